"""One synthesis stream: text deltas in, audio chunks out, whatever the engine.

Two tasks run per stream. The reader takes text deltas and flushes, cuts them into sentences
(``Segmenter``) and queues each sentence the moment it is complete. The speaker normalises
each sentence for speech, has the engine speak it, converts the audio to the requested format
and cuts it into chunks of at most ``max_chunk_ms``. Both queues are bounded: a client that
stops reading stops the synthesis, and one that sends faster than speech is held back by gRPC
flow control. When the stream is cancelled (barge-in) both tasks are cancelled and the engine
stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import numpy as np

from mesh.audio import LINEAR16, PcmFormat, Resampler, encode, split_chunks
from mesh.errors import ResourceExhausted
from tts_svc.engine import SpeechRequest, TtsEngine, Voice
from tts_svc.normalize import normalize, speakable
from tts_svc.segmenter import Segmenter, split_first_clause

MAX_TEXT_CHARS = 4096
MAX_BUFFER_CHARS = 16384
# Sentences waiting for the engine; the reader waits (and gRPC holds the client back) beyond.
MAX_QUEUED_SEGMENTS = 16
# Chunks made but not yet sent; the speaker waits beyond, so a stalled client costs no compute.
MAX_QUEUED_CHUNKS = 16
# Silence both engines leave after a part (Piper's own, Kokoro's added tail), in seconds.
PART_TAIL_S = 0.2
# Weight of the newest part in the moving averages of the engine's pace.
PACE_WEIGHT = 0.2
# The rest of a split sentence must be expected ready in 2/3 of the time its first clause plays:
# the pace moves with the machine's load, and a gap costs more than a later first audio.
PACE_MARGIN = 1.5
CALIBRATION_TEXT = "Thank you for calling, how can I help you today?"


@dataclass(frozen=True)
class StreamConfig:
    """A validated stream configuration.

    Attributes:
        voice: The voice to speak with.
        output: Wire format of the audio (mono).
        speed: Speaking-rate multiplier, 0.5-2.0.
        max_chunk_ms: Longest chunk, 20-100 ms.
    """

    voice: Voice
    output: PcmFormat
    speed: float
    max_chunk_ms: int


@dataclass(frozen=True)
class TextDelta:
    """Text to append to the stream's buffer."""

    text: str


@dataclass(frozen=True)
class Flush:
    """Speak whatever is buffered now."""


Event = TextDelta | Flush


@dataclass(frozen=True)
class AudioChunk:
    """One chunk of a segment's audio, in the stream's output format."""

    audio: bytes
    segment_id: int
    segment_text: str
    chunk_index: int
    offset_ms: int
    duration_ms: int
    segment_end: bool
    compute_ms: int


class _End:
    """Marks the end of a queue."""


_END = _End()


class Synthesizer:
    """Runs synthesis streams over one engine and enforces the per-server stream limit."""

    def __init__(
        self, engine: TtsEngine, max_streams: int, *, first_clause_alone: bool = True, workers: int = 1
    ) -> None:
        """Serve at most ``max_streams`` streams at once with ``engine``.

        With ``first_clause_alone`` a long sentence's first clause is synthesised on its own
        (``split_first_clause``), so its audio starts after that clause is made rather than
        after the whole sentence. The rest must then be made while the clause plays, or the
        listener hears a gap at the comma; so a sentence is split only when every stream has a
        worker (no more streams than ``workers``) and the engine's measured pace says the rest
        will be ready in time.
        """
        self.engine = engine
        self.max_streams = max_streams
        self.first_clause_alone = first_clause_alone
        self.workers = workers
        self.active = 0
        # Learnt from every part spoken (moving averages): compute over audio duration, and
        # audio seconds per character of spoken text. Start values: Piper on two cores.
        self.real_time_factor = 0.1
        self.seconds_per_char = 0.065
        self._paced = False

    async def calibrate(self, voice: Voice) -> None:
        """Measure the engine's pace on one sentence, before the first stream."""
        chunks = self._segment(_calibration_config(voice), 0, CALIBRATION_TEXT, CALIBRATION_TEXT, split=False)
        async with contextlib.aclosing(chunks) as made:
            async for _ in made:
                pass

    async def stream(self, config: StreamConfig, events: AsyncIterator[Event]) -> AsyncIterator[AudioChunk]:
        """Speak ``events`` as they arrive; ends after the events end and all audio is out.

        Raises:
            ResourceExhausted: the server is at its stream limit, or the buffer holds more than
                16384 characters without a sentence end.
            Exception: whatever ``events`` raises (invalid requests), at once.
        """
        if self.active >= self.max_streams:
            raise ResourceExhausted(f"tts is at its stream limit ({self.max_streams} streams); retry shortly")
        self.active += 1
        segments: asyncio.Queue[str | _End] = asyncio.Queue(MAX_QUEUED_SEGMENTS)
        out: asyncio.Queue[AudioChunk | _End | BaseException] = asyncio.Queue(MAX_QUEUED_CHUNKS)
        reader = asyncio.create_task(_read(events, segments))
        speaker = asyncio.create_task(self._speak(config, segments, out))
        reader.add_done_callback(lambda task: _on_done(task, speaker, out))
        speaker.add_done_callback(lambda task: _on_done(task, reader, out))
        try:
            while not isinstance(item := await out.get(), _End):
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.active -= 1
            reader.cancel()
            speaker.cancel()
            await asyncio.gather(reader, speaker, return_exceptions=True)

    async def _speak(
        self,
        config: StreamConfig,
        segments: asyncio.Queue[str | _End],
        out: asyncio.Queue[AudioChunk | _End | BaseException],
    ) -> None:
        segment_id = 0
        while not isinstance(text := await segments.get(), _End):
            spoken = normalize(text)
            if not speakable(spoken):
                continue
            async with contextlib.aclosing(self._segment(config, segment_id, text, spoken)) as chunks:
                async for chunk in chunks:
                    await out.put(chunk)
            segment_id += 1
        await out.put(_END)

    def _parts(self, spoken: str, speed: float) -> list[str]:
        """The sentence whole, or its first clause and the rest when the rest will be ready in time."""
        if not self.first_clause_alone or self.active > self.workers:
            return [spoken]
        parts = split_first_clause(spoken)
        if len(parts) == 1:
            return parts
        head, rest = parts
        head_plays_s = len(head) * self.seconds_per_char / speed + PART_TAIL_S
        rest_made_s = self.real_time_factor * len(rest) * self.seconds_per_char / speed
        return parts if rest_made_s * PACE_MARGIN <= head_plays_s else [spoken]

    def _learn(self, chars: int, audio_s: float, compute_ms: float, speed: float) -> None:
        if audio_s <= 0 or chars <= 0:
            return
        weight = PACE_WEIGHT if self._paced else 1.0
        self._paced = True
        self.real_time_factor += weight * (compute_ms / 1000 / audio_s - self.real_time_factor)
        self.seconds_per_char += weight * (audio_s * speed / chars - self.seconds_per_char)

    async def _segment(
        self, config: StreamConfig, segment_id: int, text: str, spoken: str, *, split: bool = True
    ) -> AsyncGenerator[AudioChunk, None]:
        """Speak one segment as chunks; the last one has ``segment_end`` set."""
        chunker = _Chunker(config, segment_id, text)
        resampler: Resampler | None = None
        first, *then = self._parts(spoken, config.speed) if split else [spoken]
        request = SpeechRequest(first, config.voice.name, config.speed, tuple(then))
        audio_s = [0.0] * len(request.parts)
        compute_ms = [0.0] * len(request.parts)
        async with contextlib.aclosing(self.engine.run_tts(request)) as pieces:
            async for piece in pieces:
                if resampler is None:
                    resampler = Resampler(piece.sample_rate_hertz, config.output.sample_rate_hertz)
                    chunker.compute_ms = round(piece.compute_ms)
                audio_s[piece.part] += len(piece.samples) / piece.sample_rate_hertz
                compute_ms[piece.part] += piece.compute_ms
                for chunk in chunker.add(resampler.process(piece.samples)):
                    yield chunk
        for part, seconds, ms in zip(request.parts, audio_s, compute_ms, strict=True):
            self._learn(len(part), seconds, ms, config.speed)
        if resampler is not None:
            for chunk in chunker.add(resampler.flush()):
                yield chunk
        yield chunker.finish()


def _calibration_config(voice: Voice) -> StreamConfig:
    return StreamConfig(voice, PcmFormat(LINEAR16, voice.sample_rate_hertz), 1.0, 100)


async def _read(events: AsyncIterator[Event], segments: asyncio.Queue[str | _End]) -> None:
    segmenter = Segmenter()
    async for event in events:
        if isinstance(event, Flush):
            sentences = [segmenter.flush()]
        else:
            sentences = segmenter.feed(event.text)
            if segmenter.buffered > MAX_BUFFER_CHARS:
                raise ResourceExhausted(
                    f"text buffer holds {segmenter.buffered} characters without a sentence end "
                    f"(limit {MAX_BUFFER_CHARS}); end sentences or send flush"
                )
        for sentence in sentences:
            if sentence:
                await segments.put(sentence)
    last = segmenter.flush()
    if last:
        await segments.put(last)
    await segments.put(_END)


def _on_done(
    task: asyncio.Task[None], other: asyncio.Task[None], out: asyncio.Queue[AudioChunk | _End | BaseException]
) -> None:
    """When one task of a stream fails, stop the other and hand the error to the stream."""
    if task.cancelled() or task.exception() is None:
        return
    other.cancel()
    error = task.exception()
    assert error is not None
    # The consumer is waiting on ``out`` or will be; make room so the error is seen next.
    while out.full():
        out.get_nowait()
    out.put_nowait(error)


class _Chunker:
    """Encodes a segment's audio and cuts it into chunks of at most ``max_chunk_ms``."""

    def __init__(self, config: StreamConfig, segment_id: int, text: str) -> None:
        self.format = config.output
        self.segment_id = segment_id
        self.text = text
        self.compute_ms = 0
        self.max_chunk_ms = config.max_chunk_ms
        self.pending = b""
        self.index = 0
        self.offset_frames = 0

    def add(self, samples: np.ndarray) -> list[AudioChunk]:
        """Take more audio; return the chunks now full (one is always held back for ``finish``)."""
        if samples.size:
            self.pending += encode(samples, self.format)
        pieces = split_chunks(self.pending, self.format, self.max_chunk_ms)
        self.pending = pieces.pop() if pieces else b""
        return [self._chunk(piece, end=False) for piece in pieces]

    def finish(self) -> AudioChunk:
        """The last chunk of the segment (empty when the engine made no audio)."""
        return self._chunk(self.pending, end=True)

    def _chunk(self, audio: bytes, *, end: bool) -> AudioChunk:
        frames = len(audio) // self.format.bytes_per_frame
        rate = self.format.sample_rate_hertz
        chunk = AudioChunk(
            audio=audio,
            segment_id=self.segment_id,
            segment_text=self.text,
            chunk_index=self.index,
            offset_ms=round(self.offset_frames * 1000 / rate),
            duration_ms=round(frames * 1000 / rate),
            segment_end=end,
            compute_ms=self.compute_ms if self.index == 0 else 0,
        )
        self.index += 1
        self.offset_frames += frames
        return chunk
