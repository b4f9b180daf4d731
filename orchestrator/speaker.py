"""Speaking a turn: text deltas in, bot audio out, as they stream.

A ``Speaker`` opens one ``StreamingSynthesize`` stream per turn on the first text it is given,
forwards every delta at once (tts_svc cuts sentences and synthesises each as soon as it is
complete), and turns the audio chunks into ``BotAudio`` responses for the caller. It also plays
pre-synthesised clips. It counts the audio it has sent, so the call can tell where playback is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from mesh import audio
from orchestrator.prompts import Clip
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import tts_service_pb2, tts_service_pb2_grpc

Emit = Callable[[pb.ConverseResponse], Awaitable[None]]

CHUNK_MS = 100


class Speaker:
    """The bot's voice for one turn."""

    def __init__(
        self,
        tts: tts_service_pb2_grpc.TtsServiceStub,
        emit: Emit,
        turn_index: int,
        voice: str,
        fmt: audio.PcmFormat,
        timeout_s: float,
    ) -> None:
        """Speak with ``voice`` in ``fmt``; responses go to ``emit`` tagged with ``turn_index``."""
        self._tts = tts
        self._emit = emit
        self.turn_index = turn_index
        self._voice = voice
        self._fmt = fmt
        self._timeout_s = timeout_s
        self._texts: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)
        self._task: asyncio.Task[None] | None = None
        self.audio_ms = 0.0
        self.first_audio_at: float | None = None
        self.first_segment_text = ""  # the text of the first audio sent (what tts_svc spoke first)
        self.tts_compute_ms = 0
        self.reported_ms: int | None = None
        self.stopped = False
        # Clips and synthesised chunks never interleave: a filler plays whole before the answer.
        self._sending = asyncio.Lock()

    async def say(self, text: str) -> None:
        """Queue a text delta for synthesis; opens the stream on first use."""
        if not text:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._synthesize(), name="tts-stream")
        await self._texts.put(text)

    async def finish(self) -> None:
        """Flush the rest and wait until all its audio was handed to the caller.

        Raises:
            grpc.aio.AioRpcError: tts_svc failed; audio sent before the failure stays sent.
        """
        if self._task is None:
            return
        await self._texts.put(None)
        try:
            await self._task
        finally:
            self._task = None  # the next ``say`` opens a new stream; offsets go on

    async def cancel(self, *, silence: bool = True) -> None:
        """Cancel the synthesis stream at once; with ``silence`` (barge-in) nothing more is sent at all.

        Without it (a failed stream) the speaker may still play a clip, such as the apology.
        """
        self.stopped = self.stopped or silence
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def play(self, clip: Clip) -> None:
        """Play a pre-synthesised clip in chunks of at most 100 ms."""
        async with self._sending:
            for chunk in audio.split_chunks(clip.encoded(self._fmt), self._fmt, CHUNK_MS):
                await self._send(chunk, clip.text)

    async def _requests(self) -> AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest]:
        config = tts_service_pb2.SynthesisConfig(
            voice=self._voice, output_format=self._fmt.to_proto(), max_chunk_ms=CHUNK_MS
        )
        yield tts_service_pb2.StreamingSynthesizeRequest(config=config)
        done = False
        while not done:
            pieces = [await self._texts.get()]
            # The model sends a delta per token; whatever queued up meanwhile goes as one message.
            while not self._texts.empty() and pieces[-1] is not None:
                pieces.append(self._texts.get_nowait())
            done = pieces[-1] is None
            text = "".join(piece for piece in pieces if piece is not None)
            if text:
                yield tts_service_pb2.StreamingSynthesizeRequest(text=text[:4096])
        yield tts_service_pb2.StreamingSynthesizeRequest(flush=True)

    async def _synthesize(self) -> None:
        async for chunk in self._tts.StreamingSynthesize(self._requests(), timeout=self._timeout_s):
            if chunk.compute_ms and not self.tts_compute_ms:
                self.tts_compute_ms = chunk.compute_ms
            async with self._sending:
                await self._send(chunk.audio, chunk.segment_text)

    async def _send(self, data: bytes, text: str) -> None:
        if not data or self.stopped:
            return
        duration = self._fmt.duration_ms(len(data))
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()
            self.first_segment_text = text
        bot_audio = pb.BotAudio(
            audio=data,
            audio_format=self._fmt.to_proto(),
            offset_ms=int(self.audio_ms),
            duration_ms=round(duration),
            segment_text=text,
        )
        self.audio_ms += duration
        await self._emit(pb.ConverseResponse(turn_index=self.turn_index, bot_audio=bot_audio))

    def report_playback(self, position_ms: int) -> None:
        """Take the caller's playback position in this speaker's audio.

        A report that comes before this speaker sent anything is about earlier audio and is
        ignored; one beyond what was sent is clamped to it.
        """
        if self.first_audio_at is not None:
            self.reported_ms = max(0, min(position_ms, int(self.audio_ms)))

    def playback_ms(self) -> int:
        """Where the caller's playback is: what it reported, else real time since the first chunk."""
        if self.reported_ms is not None:
            return min(self.reported_ms, int(self.audio_ms))
        if self.first_audio_at is None:
            return 0
        return int(min(self.audio_ms, (time.monotonic() - self.first_audio_at) * 1000))

    def playing(self) -> bool:
        """True once audio was sent, while more is coming or it is still playing (as reported, else estimated).

        A stopped (barged-in) speaker is not playing.
        """
        if self.first_audio_at is None or self.stopped:
            return False
        if self._task is not None and not self._task.done():
            return True
        return self.playback_ms() < int(self.audio_ms)
