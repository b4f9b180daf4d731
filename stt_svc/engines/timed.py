"""Timed: a test engine with no model, for load tests of the mesh.

An energy VAD (RMS of 20 ms windows against ``timed_vad_rms``) finds utterances with the same
rules the real engine follows (``vad_min_speech_ms`` of speech opens one, the stream's
endpointing silence closes it, ``max_utterance_ms`` cuts it); every utterance is transcribed as
the fixed ``timed_transcript``. The final result follows the endpoint after ``timed_decode_ms``
and interim results come every ``interim_cadence_ms`` of speech, each revealing more words. Waits
are ``asyncio.sleep``: the engine spends no CPU beyond the RMS, so a load test measures the mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from stt_svc.config import SttSettings
from stt_svc.engine import (
    SAMPLE_RATE,
    FinalResult,
    InterimResult,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
    SttEvent,
    Word,
)

WINDOW_MS = 20
_WINDOW = SAMPLE_RATE * WINDOW_MS // 1000
# Events waiting for the consumer; the reader waits beyond (events are a few per second).
MAX_QUEUED_EVENTS = 64
CONFIDENCE = 0.95


@dataclass(frozen=True)
class _Due:
    """An event to hand out no earlier than ``at`` (monotonic seconds)."""

    event: SttEvent
    at: float


class _End:
    """Marks the end of the event queue."""


class TimedEngine:
    """Energy VAD plus a fixed transcript, delivered at a configured latency (see the module docstring)."""

    name = "timed"
    languages: tuple[str, ...] = ("en",)

    def __init__(self, settings: SttSettings) -> None:
        """Take the transcript, latency, VAD level and interim cadence from ``settings``."""
        self.words = tuple(settings.timed_transcript.split())
        self.decode_s = settings.timed_decode_ms / 1000
        self.threshold = settings.timed_vad_rms
        self.min_speech_ms = settings.vad_min_speech_ms
        self.interim_ms = settings.interim_cadence_ms

    async def start(self) -> None:
        """Nothing to load."""

    async def stop(self) -> None:
        """Nothing to release."""

    async def recognize(self, config: StreamConfig, audio: AsyncIterator[np.ndarray]) -> AsyncIterator[SttEvent]:
        """Find utterances in ``audio`` and report each with the fixed transcript; see the module docstring."""
        queue: asyncio.Queue[_Due | _End | BaseException] = asyncio.Queue(MAX_QUEUED_EVENTS)
        reader = asyncio.create_task(self._read(config, audio, queue))
        try:
            while not isinstance(item := await queue.get(), _End):
                if isinstance(item, BaseException):
                    raise item
                wait = item.at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                yield item.event
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(
        self, config: StreamConfig, audio: AsyncIterator[np.ndarray], queue: asyncio.Queue[_Due | _End | BaseException]
    ) -> None:
        tracker = _Tracker(self, config)
        pending = np.zeros(0, dtype=np.float32)
        try:
            async for chunk in audio:
                pending = np.concatenate([pending, chunk]) if len(pending) else chunk
                whole = len(pending) - len(pending) % _WINDOW
                if whole:
                    windows = pending[:whole].reshape(-1, _WINDOW)
                    levels = np.sqrt(np.mean(np.square(windows, dtype=np.float32), axis=1))
                    for level in levels:
                        for due in tracker.window(bool(level >= self.threshold)):
                            await queue.put(due)
                    pending = pending[whole:]
            for due in tracker.close():
                await queue.put(due)
        except Exception as exc:  # handed to the consumer, which raises it in the stream
            await queue.put(exc)
            return
        await queue.put(_End())


class _Tracker:
    """The utterance state machine of one stream, in audio time (20 ms windows)."""

    def __init__(self, engine: TimedEngine, config: StreamConfig) -> None:
        self.engine = engine
        self.config = config
        self.at_ms = 0
        self.index = 0
        self.run_start_ms: int | None = None  # first window of the speech run before an utterance opens
        self.open_ms: int | None = None  # start of the open utterance
        self.silence_from_ms: int | None = None
        self.next_interim_ms = 0

    def window(self, speech: bool) -> list[_Due]:
        """Advance one window; returns the events it causes."""
        start, self.at_ms = self.at_ms, self.at_ms + WINDOW_MS
        out: list[_Due] = []
        if self.open_ms is None:
            if not speech:
                self.run_start_ms = None
                return out
            if self.run_start_ms is None:
                self.run_start_ms = start
            if self.at_ms - self.run_start_ms >= max(self.engine.min_speech_ms, WINDOW_MS):
                self.open_ms, self.silence_from_ms = self.run_start_ms, None
                self.next_interim_ms = self.open_ms + self.engine.interim_ms
                out.append(_now(SpeechStarted(self.open_ms, self.index)))
            return out
        if speech:
            self.silence_from_ms = None
        elif self.silence_from_ms is None:
            self.silence_from_ms = start
        if self.silence_from_ms is not None and self.at_ms - self.silence_from_ms >= self.config.endpointing_silence_ms:
            return self._close(self.silence_from_ms)
        if self.at_ms - self.open_ms >= self.config.max_utterance_ms:
            return self._close(self.at_ms)
        if self.config.interim_results and speech and self.at_ms >= self.next_interim_ms:
            self.next_interim_ms = self.at_ms + self.engine.interim_ms
            out.append(_now(self._interim()))
        return out

    def close(self) -> list[_Due]:
        """End of audio: close the open utterance, if any."""
        if self.open_ms is None:
            return []
        return self._close(self.silence_from_ms if self.silence_from_ms is not None else self.at_ms)

    def _interim(self) -> InterimResult:
        assert self.open_ms is not None
        words = self.engine.words
        shown = min(len(words), 1 + (self.at_ms - self.open_ms) // 300)
        done = shown == len(words)  # every word revealed: nothing left to change, as a real decoder's
        return InterimResult(  # stable prefix reports once its hypothesis repeats
            utterance_index=self.index,
            stable_text=" ".join(words[: shown if done else shown - 1]),
            unstable_text="" if done else words[shown - 1],
            stability=1.0 if done else 0.5,
            start_ms=self.open_ms,
            end_ms=self.at_ms,
            compute_ms=0,
        )

    def _close(self, end_ms: int) -> list[_Due]:
        assert self.open_ms is not None
        start_ms, index = self.open_ms, self.index
        words = self.engine.words
        step = max(1, (end_ms - start_ms) // len(words))
        timed = tuple(
            Word(word, start_ms + i * step, min(end_ms, start_ms + (i + 1) * step), CONFIDENCE)
            for i, word in enumerate(words)
        )
        final = FinalResult(
            utterance_index=index,
            transcript=" ".join(words),
            confidence=CONFIDENCE,
            words=timed,
            start_ms=start_ms,
            end_ms=end_ms,
            compute_ms=round(self.engine.decode_s * 1000),
        )
        self.index += 1
        self.open_ms = self.run_start_ms = self.silence_from_ms = None
        ended = _now(SpeechEnded(end_ms, index))
        return [ended, _Due(final, ended.at + self.engine.decode_s)]


def _now(event: SttEvent) -> _Due:
    return _Due(event, time.monotonic())
