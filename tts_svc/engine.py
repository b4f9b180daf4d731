"""The engine contract of tts_svc and the domain types it speaks.

An engine turns one segment of text (a sentence, already normalised for speech) into audio
through one async streaming hook, ``run_tts``, as pipecat's TTS services do. Everything
around it (segmenting deltas, output formats, chunking, limits) lives in ``tts_svc.stream``
and is shared by every engine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Voice:
    """One voice of an engine, as ListVoices reports it."""

    name: str
    language_code: str
    sample_rate_hertz: int
    engine: str
    description: str


@dataclass(frozen=True)
class SpeechRequest:
    """One segment to speak, whole or in parts.

    Attributes:
        text: The segment (or its first part), normalised for speech; never empty.
        voice: A name from the engine's ``voices``.
        speed: Speaking-rate multiplier, 0.5-2.0 (1.0 is the voice's natural rate).
        then: Further parts of the same segment, spoken after ``text`` in order. An engine
            should start them at once (behind ``text``), so that each is ready when the part
            before it has played.
    """

    text: str
    voice: str
    speed: float
    then: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        """Every part, in order."""
        return (self.text, *self.then)


@dataclass(frozen=True)
class AudioPiece:
    """A piece of a segment's audio.

    Attributes:
        samples: Mono float32 samples in [-1, 1].
        sample_rate_hertz: Rate of ``samples`` (the voice's native rate).
        compute_ms: Engine compute time spent making this piece, in milliseconds.
        part: Index of the request part this piece speaks (0 for ``text``).
    """

    samples: np.ndarray
    sample_rate_hertz: int
    compute_ms: float
    part: int = 0


@dataclass(frozen=True)
class EngineStats:
    """Work counters of an engine since it started (inference runs are the unit of work).

    Attributes:
        runs_started: Model inference runs begun.
        runs_cancelled: Runs refused or stopped part-way because their stream was cancelled.
    """

    runs_started: int
    runs_cancelled: int


def bcp47(code: str) -> str:
    """A language code as BCP-47 writes it: "en_US" and "en-us" become "en-US"."""
    language, _, region = code.replace("_", "-").partition("-")
    return f"{language.lower()}-{region.upper()}" if region else language.lower()


class TtsEngine(Protocol):
    """What tts_svc needs from a synthesis engine."""

    name: str

    @property
    def voices(self) -> Sequence[Voice]:
        """The voices this engine speaks, default first; valid after ``start``."""
        ...

    async def start(self) -> None:
        """Load the model and synthesise a warm-up sentence.

        Raises:
            Unavailable: the model files are missing or broken (the message names them).
        """
        ...

    def run_tts(self, request: SpeechRequest) -> AsyncGenerator[AudioPiece, None]:
        """Speak one segment, yielding its audio in order as it is made.

        Closing the iterator early (the stream was cancelled) stops the work at once: no
        further inference starts and a run in progress is interrupted.
        """
        ...

    def stats(self) -> EngineStats:
        """Work counters, for tests, benchmarks and metrics."""
        ...

    async def stop(self) -> None:
        """Release the model and worker threads."""
        ...
