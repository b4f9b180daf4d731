"""tts_svc start-up and limits: settings checked, missing models named, health, the stream limit."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import mesh
from mesh.errors import Unavailable
from mesh.settings import SettingsError
from tests.tts_svc.conftest import Config, Request, _start
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings


def settings(**overrides: object) -> TtsSettings:
    return TtsSettings.from_env({}, host="127.0.0.1", port=0, metrics_port=-1, **overrides)


def test_defaults() -> None:
    s = TtsSettings.from_env({})
    assert (s.port, s.engine, s.default_max_chunk_ms, s.voice) == (50053, "piper", 100, "")


def test_settings_come_from_the_environment() -> None:
    s = TtsSettings.from_env({"VOICEBOT_TTS_ENGINE": "kokoro", "VOICEBOT_TTS_WORKERS": "3"})
    assert (s.engine, s.workers) == ("kokoro", 3)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"engine": "espeak"}, "VOICEBOT_TTS_ENGINE='espeak'"),
        ({"default_max_chunk_ms": 500}, "VOICEBOT_TTS_DEFAULT_MAX_CHUNK_MS must be 20-100"),
        ({"workers": 0}, "VOICEBOT_TTS_WORKERS"),
        ({"max_streams": 0}, "VOICEBOT_TTS_MAX_STREAMS"),
        ({"max_streams": 100}, "VOICEBOT_TTS_MAX_STREAMS must be 1..VOICEBOT_TTS_MAX_PENDING - VOICEBOT_TTS_WORKERS"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle.replace("(", r"\(")):
        TtsApp(settings(**overrides))


@pytest.mark.parametrize(
    ("overrides", "error", "needle"),
    [
        ({"piper_model": "/nonexistent/voice.onnx"}, Unavailable, "/nonexistent/voice.onnx.*PIPER_MODEL"),
        ({"engine": "kokoro", "kokoro_voices": "/nonexistent/v.npz"}, Unavailable, "/nonexistent/v.npz"),
        ({"voice": "en_GB-nobody"}, SettingsError, "en_GB-nobody.*en_US-joe-medium"),
    ],
)
async def test_start_fails_naming_what_is_missing(overrides: dict[str, object], error: type, needle: str) -> None:
    s = settings(**overrides)
    server = mesh.MeshServer(TtsApp(s), s)
    try:
        with pytest.raises(error, match=needle):
            await server.start()
    finally:
        await server.stop(0)


async def test_serving_after_warm_up_and_the_stream_limit() -> None:
    async for tts in _start(engine="piper", max_streams=1):
        health = health_pb2_grpc.HealthStub(tts.channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service="voicebot.v1.TtsService"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING

        first = tts.stub.StreamingSynthesize(timeout=60)
        await first.write(Request(config=Config()))
        await first.write(Request(text="Hello, and welcome"))
        for _ in range(500):  # until the server holds the first stream
            if tts.app.synthesizer.active:
                break
            await asyncio.sleep(0.01)
        second = tts.stub.StreamingSynthesize(timeout=60)
        await second.write(Request(config=Config()))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await second.read()
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "stream limit (1 streams)" in err.value.details()

        await first.write(Request(text=" to the bank."))
        await first.done_writing()
        texts = []
        while (response := await first.read()) != grpc.aio.EOF:
            texts.append(response.segment_text)
        assert set(texts) == {"Hello, and welcome to the bank."}
