"""Streaming recognition for engines that decode whole utterances (Whisper has no streaming).

``SegmentedRecognizer.recognize`` is the ``SttEngine`` streaming hook built on an
``UtteranceDecoder``:

* Silero VAD scores each 32 ms window. Speech that lasts ``vad_min_speech_ms`` opens an
  utterance (SPEECH_STARTED, offset at its first speech window); a window below the silence
  threshold (threshold - 0.15) starts a silence, a window at or above the threshold cancels it.
* Once the silence has lasted ``endpointing_silence_ms`` the utterance closes: SPEECH_ENDED with
  the offset where the silence began, then the final result. An utterance reaching
  ``max_utterance_ms`` closes at once; if speech goes on, the next utterance starts at that
  offset. End of audio closes an open utterance.
* While speech goes on, the open utterance is re-decoded every ``interim_cadence_ms`` of new audio
  and reported as an interim result with a stable prefix (``stability.StablePrefix``).
  Interim decodes run beside the audio, never hold it up, and are skipped when the decoder is
  busy. Results of an utterance always come before its SPEECH_ENDED.
* Speculative final: once the silence has lasted ``speculative_ms``, the utterance is decoded as
  it would be at the endpoint (with up to ``speech_pad_ms`` of the silence); if the silence
  reaches the endpoint, that decode is the final, so the final follows SPEECH_ENDED almost at
  once. Speech resuming discards it. A pause shorter than the endpoint but longer than
  ``speculative_ms`` costs one wasted decode; that is the price of the head start.

Everything is decided in audio time (sample counts), so the same audio gives the same
utterances and endpoints whatever the machine's speed; only which interim decodes run depends
on load.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from mesh.errors import ResourceExhausted
from mesh.workers import WorkerBridge
from stt_svc.engine import (
    SAMPLE_RATE,
    Decoded,
    FinalResult,
    InterimResult,
    SpeechEnded,
    SpeechStarted,
    StreamConfig,
    SttEvent,
    UtteranceDecoder,
    Word,
)
from stt_svc.stability import StablePrefix
from stt_svc.vad import WINDOW, SileroVad, VadState

_PER_MS = SAMPLE_RATE // 1000
T = TypeVar("T")


def _ms(sample: int) -> int:
    return sample // _PER_MS


@dataclass(frozen=True)
class SegmenterOptions:
    """Service-wide knobs of the segmenter (see ``SttSettings`` for meanings and ranges)."""

    vad_threshold: float = 0.5
    vad_min_speech_ms: int = 96
    speech_pad_ms: int = 200
    interim_cadence_ms: int = 400
    speculative_ms: int = 120


class SegmentedRecognizer:
    """Gives an ``UtteranceDecoder`` a streaming ``recognize`` hook (VAD, endpointing, interims)."""

    def __init__(
        self, decoder: UtteranceDecoder, vad: SileroVad, vad_bridge: WorkerBridge, options: SegmenterOptions
    ) -> None:
        """Share ``decoder`` and ``vad`` between all streams; VAD runs in ``vad_bridge``."""
        self.decoder = decoder
        self.vad = vad
        self.vad_bridge = vad_bridge
        self.options = options

    async def recognize(self, config: StreamConfig, audio: AsyncIterator[np.ndarray]) -> AsyncIterator[SttEvent]:
        """Transcribe ``audio`` (mono float32 at 16 kHz); see the module docstring."""
        stream = _Stream(self, config)
        async for event in stream.run(audio):
            yield event


class _Audio:
    """The stream's recent audio, addressed by absolute sample index."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.start = 0
        self.end = 0

    def append(self, chunk: np.ndarray) -> None:
        self._chunks.append(chunk)
        self.end += len(chunk)

    def slice(self, first: int, stop: int) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return self._chunks[0][max(first, self.start) - self.start : max(stop, self.start) - self.start]

    def discard_before(self, sample: int) -> None:
        while self._chunks and self.start + len(self._chunks[0]) <= sample:
            self.start += len(self._chunks.pop(0))


async def _next(chunks: AsyncIterator[np.ndarray]) -> np.ndarray | None:
    return await anext(chunks, None)


def _background(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro``; a failure nobody awaits (a dropped decode) is not reported as lost."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


class _Stream:
    """One recognition stream: VAD state, the open utterance and its decodes."""

    def __init__(self, owner: SegmentedRecognizer, config: StreamConfig) -> None:
        options = owner.options
        self.decoder = owner.decoder
        self.vad = owner.vad
        self.vad_bridge = owner.vad_bridge
        self.config = config
        self.threshold = options.vad_threshold
        self.silence_threshold = max(options.vad_threshold - 0.15, 0.01)
        self.min_speech = options.vad_min_speech_ms * _PER_MS
        self.pre_pad = options.speech_pad_ms * _PER_MS
        self.post_pad = min(options.speech_pad_ms, config.endpointing_silence_ms) * _PER_MS
        self.cadence = options.interim_cadence_ms * _PER_MS
        self.speculate = 0 < options.speculative_ms < config.endpointing_silence_ms
        self.speculate_after = options.speculative_ms * _PER_MS
        self.endpoint = config.endpointing_silence_ms * _PER_MS
        self.max_utterance = config.max_utterance_ms * _PER_MS

        self.audio = _Audio()
        self.vad_state = VadState()
        self.position = 0  # samples scored by the VAD
        self.index = 0
        self.in_speech = False
        self.candidate: int | None = None  # first speech window of speech not yet long enough
        self.start = 0  # first speech sample of the open utterance
        self.decode_from = 0  # first sample its decodes see (start less the pre-roll)
        self.silence: int | None = None  # where the current silence inside the utterance began
        self.prefix = StablePrefix()
        self.interim: asyncio.Task[tuple[int, int, int, Decoded | None]] | None = None
        self.interim_end = 0  # audio end of the last interim decode started
        self.speculative: asyncio.Task[Decoded | None] | None = None
        self.speculative_end = 0

    async def run(self, chunks: AsyncIterator[np.ndarray]) -> AsyncIterator[SttEvent]:
        reading = asyncio.ensure_future(_next(chunks))
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {reading}
                if self.interim is not None:
                    waiting.add(self.interim)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for interim in self._take_interim():
                    yield interim
                if reading.done():
                    chunk = reading.result()
                    if chunk is None:
                        break
                    # Read the next message while this one is processed.
                    reading = asyncio.ensure_future(_next(chunks))
                    async for event in self._feed(chunk):
                        yield event
            async for event in self._finish():
                yield event
        finally:
            reading.cancel()
            self._drop_interim()
            self._drop_speculative()

    async def _feed(self, chunk: np.ndarray) -> AsyncIterator[SttEvent]:
        self.audio.append(chunk)
        if self.vad_state.hold(chunk):
            return
        probabilities = await self.vad_bridge.run(self.vad.probabilities, self.vad_state, chunk)
        for probability in probabilities:
            async for event in self._window(float(probability)):
                yield event
        if self.in_speech:
            self._schedule_decodes()
        else:
            first = self.candidate if self.candidate is not None else self.position
            self.audio.discard_before(first - self.pre_pad)

    async def _window(self, probability: float) -> AsyncIterator[SttEvent]:
        first = self.position
        self.position += WINDOW
        end = self.position
        if not self.in_speech:
            if probability >= self.threshold:
                if self.candidate is None:
                    self.candidate = first
                if end - self.candidate >= self.min_speech:
                    yield self._open(self.candidate, pre_roll=True)
            elif probability < self.silence_threshold:
                self.candidate = None
            return
        if probability >= self.threshold:
            if self.silence is not None:
                self.silence = None
                self._drop_speculative()
        elif probability < self.silence_threshold and self.silence is None:
            self.silence = first
        if self.silence is not None and end - self.silence >= self.endpoint:
            async for event in self._close(self.silence):
                yield event
        elif end - self.start >= self.max_utterance:
            if self.silence is not None:
                async for event in self._close(self.silence):
                    yield event
                return
            # Speech goes on: cut it exactly at the limit and carry on in the next utterance.
            cut = self.start + self.max_utterance
            async for event in self._close(cut, trailing=False):
                yield event
            yield self._open(cut, pre_roll=False)

    def _open(self, start: int, *, pre_roll: bool) -> SpeechStarted:
        self.in_speech = True
        self.candidate = None
        self.silence = None
        self.start = start
        self.decode_from = max(0, start - self.pre_pad) if pre_roll else start
        self.interim_end = start
        self.prefix = StablePrefix()
        return SpeechStarted(offset_ms=_ms(start), utterance_index=self.index)

    async def _close(self, end: int, *, trailing: bool = True) -> AsyncIterator[SttEvent]:
        """End the utterance at ``end``; ``trailing``: its decode may hear the silence after ``end``."""
        yield SpeechEnded(offset_ms=_ms(end), utterance_index=self.index)
        self._drop_interim()
        decoded = await self._final(end, end + self.post_pad if trailing else end)
        words = self._place(decoded.words, _ms(self.start), _ms(end))
        yield FinalResult(
            utterance_index=self.index,
            transcript=decoded.text,
            confidence=decoded.confidence,
            words=words,
            start_ms=_ms(self.start),
            end_ms=_ms(end),
            compute_ms=decoded.compute_ms,
        )
        self.index += 1
        self.in_speech = False
        self.silence = None

    def _place(self, words: tuple[Word, ...], first_ms: int, last_ms: int) -> tuple[Word, ...]:
        """Words in stream time, inside the utterance (alignment may stray into the padding)."""
        shift = _ms(self.decode_from)
        placed = []
        for word in words:
            start = min(max(word.start_ms + shift, first_ms), last_ms)
            placed.append(replace(word, start_ms=start, end_ms=min(max(word.end_ms + shift, start), last_ms)))
        return tuple(placed)

    async def _final(self, end: int, stop: int) -> Decoded:
        speculative, self.speculative = self.speculative, None
        if speculative is not None and self.speculative_end == end:
            with contextlib.suppress(ResourceExhausted):
                decoded = await speculative
                if decoded is not None:
                    return decoded
        elif speculative is not None:
            speculative.cancel()
        decoded = await self._decode(stop, words=True, final=True)
        assert decoded is not None  # a final decode always runs
        return decoded

    def _schedule_decodes(self) -> None:
        if self.silence is not None:
            if self.speculate and self.speculative is None and self.position - self.silence >= self.speculate_after:
                self.speculative_end = self.silence
                stop = min(self.silence + self.post_pad, self.audio.end)
                self.speculative = _background(self._decode(stop, words=True, final=True))
            return
        if self.config.interim_results and self.interim is None and self.audio.end - self.interim_end >= self.cadence:
            self.interim = _background(self._interim(self.index, self.interim_end, self.audio.end))
            self.interim_end = self.audio.end

    async def _interim(self, index: int, previous_end: int, end: int) -> tuple[int, int, int, Decoded | None]:
        return index, previous_end, end, await self._decode(end, words=False, final=False)

    def _take_interim(self) -> list[InterimResult]:
        if self.interim is None or not self.interim.done():
            return []
        index, previous_end, end, decoded = self.interim.result()
        self.interim = None
        if decoded is None:
            self.interim_end = previous_end  # skipped for load: try again with the next audio
            return []
        if index != self.index or not self.in_speech or not decoded.text:
            return []
        view = self.prefix.update(decoded.text, decoded.confidence)
        return [
            InterimResult(
                utterance_index=index,
                stable_text=view.stable,
                unstable_text=view.unstable,
                stability=view.stability,
                start_ms=_ms(self.start),
                end_ms=_ms(end),
                compute_ms=decoded.compute_ms,
            )
        ]

    async def _decode(self, stop: int, *, words: bool, final: bool) -> Decoded | None:
        samples = self.audio.slice(self.decode_from, stop)
        config = self.config
        return await self.decoder.decode(
            samples, words=words, final=final, hints=config.phrase_hints, language=config.language
        )

    async def _finish(self) -> AsyncIterator[SttEvent]:
        if self.vad_state.pending.size:
            padding = np.zeros(WINDOW - self.vad_state.pending.size, dtype=np.float32)
            probabilities = await self.vad_bridge.run(self.vad.probabilities, self.vad_state, padding)
            for probability in probabilities:
                async for event in self._window(float(probability)):
                    yield event
        if self.in_speech:
            end = self.silence if self.silence is not None else min(self.position, self.audio.end)
            async for event in self._close(end):
                yield event

    def _drop_interim(self) -> None:
        if self.interim is not None:
            self.interim.cancel()
            self.interim = None

    def _drop_speculative(self) -> None:
        if self.speculative is not None:
            self.speculative.cancel()
            self.speculative = None
