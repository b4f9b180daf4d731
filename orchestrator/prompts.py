"""Fixed phrases synthesised once at start-up and replayed from memory.

The greeting, the apology (which must play even when tts_svc is down), fillers and the loan
disclosure are spoken the same way in every call, so the orchestrator asks tts_svc for them once,
keeps them as mono float32 samples at the voice's rate, and re-encodes them per call format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np

from mesh import audio
from voicebot.v1 import audio_pb2, tts_service_pb2, tts_service_pb2_grpc

log = logging.getLogger("orchestrator.prompts")

GREETING = "Hello, you're through to the demo bank's voice assistant. How can I help you today?"
APOLOGY = "I'm sorry, I'm having trouble right now. Please try again in a moment."
FILLER = "One moment please."
GOODBYE = "Thank you for calling. Goodbye."
TRANSFER = "I'm transferring you to a colleague now. Please hold."


@dataclass(frozen=True)
class Clip:
    """A synthesised phrase: its text and mono float32 samples at ``rate`` hertz."""

    text: str
    samples: np.ndarray
    rate: int

    def encoded(self, fmt: audio.PcmFormat) -> bytes:
        """The clip in a call's output format."""
        return audio.encode(audio.resample(self.samples, self.rate, fmt.sample_rate_hertz), fmt)


async def synthesize(stub: tts_service_pb2_grpc.TtsServiceStub, text: str, voice: str, timeout_s: float) -> Clip:
    """Ask tts_svc for one phrase at the voice's native rate."""

    async def requests() -> AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest]:
        yield tts_service_pb2.StreamingSynthesizeRequest(config=tts_service_pb2.SynthesisConfig(voice=voice))
        yield tts_service_pb2.StreamingSynthesizeRequest(text=text)
        yield tts_service_pb2.StreamingSynthesizeRequest(flush=True)

    pieces: list[np.ndarray] = []
    rate = 0
    async for chunk in stub.StreamingSynthesize(requests(), timeout=timeout_s):
        fmt = audio.PcmFormat(chunk.audio_format.encoding, chunk.audio_format.sample_rate_hertz)
        rate = fmt.sample_rate_hertz
        pieces.append(audio.decode(chunk.audio, fmt))
    if not pieces:
        raise RuntimeError(f"tts_svc returned no audio for {text!r}")
    return Clip(text, np.concatenate(pieces), rate)


class PromptCache:
    """The pre-synthesised phrases of one voice; phrases not yet synthesised play as text only."""

    PHRASES: tuple[str, ...] = (GREETING, APOLOGY, FILLER, GOODBYE, TRANSFER)

    def __init__(self, voice: str, extra: tuple[str, ...] = ()) -> None:
        """Prepare to synthesise the standard phrases plus ``extra`` (e.g. the loan disclosure)."""
        self.voice = voice
        self.phrases = (*self.PHRASES, *extra)
        self.clips: dict[str, Clip] = {}

    def get(self, text: str, voice: str | None = None) -> Clip | None:
        """The clip for ``text``, when it was synthesised and (unless ``voice`` is None) is in ``voice``.

        Calls in another voice than the prompts' synthesise fixed phrases live instead, so the bot
        keeps one voice; only the apology, which must play when tts_svc is down, takes any voice.
        """
        if voice is not None and voice != self.voice:
            return None
        return self.clips.get(text)

    async def warm(self, stub: tts_service_pb2_grpc.TtsServiceStub, deadline_s: float) -> bool:
        """Synthesise every phrase, retrying until ``deadline_s``; True when all are ready."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline_s
        while True:
            try:
                for text in self.phrases:
                    if text not in self.clips:
                        self.clips[text] = await synthesize(stub, text, self.voice, timeout_s=30)
                log.info("prompts ready", extra={"phrases": len(self.clips)})
                return True
            except (grpc.aio.AioRpcError, RuntimeError) as exc:
                if loop.time() > give_up:
                    log.warning("prompts not ready (%s); they will play as text only until tts_svc answers", exc)
                    return False
                await asyncio.sleep(1.0)


def linear16(rate: int) -> audio_pb2.AudioFormat:
    """A LINEAR16 mono wire format at ``rate``."""
    return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=rate, channels=1)
