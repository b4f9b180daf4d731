"""The engine protocol of stt_svc and the domain types it speaks.

An engine turns one stream of mono float32 audio at ``SAMPLE_RATE`` into a stream of events:
for every utterance ``SpeechStarted``, any number of ``InterimResult`` (when asked for),
``SpeechEnded`` and exactly one ``FinalResult``, in that order. All offsets are milliseconds of
stream audio from the first sample. The servicer validates the wire config and converts the
wire audio (any accepted rate or encoding) before it reaches an engine; engines raise
``mesh.errors``.

Whisper-like engines have no streaming of their own: they implement ``UtteranceDecoder`` (decode
one utterance's audio) and get their streaming hook from ``stt_svc.streaming``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000
"""Sample rate, in hertz, of the audio every engine receives."""


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message names the model and the setting."""


@dataclass(frozen=True)
class StreamConfig:
    """One stream's recognition settings, already validated and with defaults filled in."""

    language: str
    interim_results: bool
    endpointing_silence_ms: int
    max_utterance_ms: int
    phrase_hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing in milliseconds and its probability 0-1."""

    word: str
    start_ms: int
    end_ms: int
    confidence: float


@dataclass(frozen=True)
class SpeechStarted:
    """Voice activity began at ``offset_ms``."""

    offset_ms: int
    utterance_index: int


@dataclass(frozen=True)
class SpeechEnded:
    """Voice activity ended at ``offset_ms`` and the endpointing silence (or the length limit) confirmed it."""

    offset_ms: int
    utterance_index: int


@dataclass(frozen=True)
class InterimResult:
    """A transcript of the open utterance so far.

    ``stable_text`` only ever grows within an utterance: a word in it is never changed by a later
    interim result. ``stability`` estimates the probability (0-1) that ``unstable_text`` stays.
    """

    utterance_index: int
    stable_text: str
    unstable_text: str
    stability: float
    start_ms: int
    end_ms: int
    compute_ms: int

    @property
    def transcript(self) -> str:
        """Stable and unstable text together."""
        return " ".join(part for part in (self.stable_text, self.unstable_text) if part)


@dataclass(frozen=True)
class FinalResult:
    """The one final transcript of a closed utterance; ``confidence`` is the mean word probability."""

    utterance_index: int
    transcript: str
    confidence: float
    words: tuple[Word, ...]
    start_ms: int
    end_ms: int
    compute_ms: int


SttEvent = SpeechStarted | SpeechEnded | InterimResult | FinalResult


class SttEngine(Protocol):
    """A speech-to-text engine: one async streaming hook plus its lifecycle."""

    name: str
    languages: tuple[str, ...]
    """Language codes (ISO 639-1, e.g. "en") the loaded model recognises."""

    async def start(self) -> None:
        """Load the model and warm it up with one decode.

        Raises:
            ModelUnavailable: the model is missing or unreadable.
        """
        ...

    async def stop(self) -> None:
        """Release the model and its threads."""
        ...

    def recognize(self, config: StreamConfig, audio: AsyncIterator[np.ndarray]) -> AsyncIterator[SttEvent]:
        """Transcribe ``audio`` (mono float32 chunks at ``SAMPLE_RATE``) as it arrives.

        The events end when ``audio`` ends, after any open utterance is finalised. Errors raised
        by ``audio`` propagate.
        """
        ...


@dataclass(frozen=True)
class Decoded:
    """What one decode of an utterance's audio found.

    Word offsets are milliseconds from the first sample decoded; ``words`` is empty unless they
    were asked for. ``confidence`` is the mean word probability with words, else the mean token
    probability.
    """

    text: str
    words: tuple[Word, ...]
    confidence: float
    compute_ms: int


class UtteranceDecoder(Protocol):
    """Decodes one utterance's audio at a time: what a Whisper-like engine provides."""

    async def decode(
        self, samples: np.ndarray, *, words: bool, final: bool, hints: tuple[str, ...], language: str
    ) -> Decoded | None:
        """Decode ``samples`` (mono float32 at ``SAMPLE_RATE``).

        Args:
            samples: The utterance audio, padding included.
            words: Also align words (finals need them; interims do not).
            final: A final decode: it must run. Otherwise it is an interim decode that may be
                skipped, returning None, when the decoder is busy.
            hints: Phrases likely to be spoken.
            language: ISO 639-1 code of the speech.

        Raises:
            ResourceExhausted: a final decode found the decoder at capacity.
        """
        ...
