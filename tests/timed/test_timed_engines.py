"""The ``timed`` test engines of stt_svc, llm_svc and tts_svc, each served over real gRPC on loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
import pytest

import mesh
from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from mesh import audio
from mesh.settings import SettingsError
from stt_svc.app import SttApp
from stt_svc.config import SttSettings
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings
from voicebot.v1 import (
    audio_pb2,
    llm_service_pb2,
    llm_service_pb2_grpc,
    stt_service_pb2,
    stt_service_pb2_grpc,
    tts_service_pb2,
    tts_service_pb2_grpc,
)

RATE = 16000
FORMAT = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hertz=RATE, channels=1)


@contextlib.asynccontextmanager
async def serving(app_type: Any, settings: Any) -> AsyncIterator[grpc.aio.Channel]:
    """Serve ``app_type(settings)`` on a free loopback port and yield a channel to it."""
    server = mesh.MeshServer(app_type(settings), settings)
    await server.start()
    channel = mesh.dial(f"127.0.0.1:{server.port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(0)


def bursts(*pattern_ms: int) -> np.ndarray:
    """Alternating tone and silence of the given lengths (tone first), 16 kHz float32."""
    parts = []
    for number, length in enumerate(pattern_ms):
        t = np.arange(RATE * length // 1000) / RATE
        parts.append((0.3 * np.sin(2 * np.pi * 300 * t) if number % 2 == 0 else 0 * t).astype(np.float32))
    return np.concatenate(parts)


async def recognize(stub: stt_service_pb2_grpc.SttServiceStub, samples: np.ndarray, interim: bool = True) -> list[Any]:
    fmt = audio.PcmFormat(audio.LINEAR16, RATE)

    async def requests() -> AsyncIterator[stt_service_pb2.StreamingRecognizeRequest]:
        config = stt_service_pb2.RecognitionConfig(audio_format=FORMAT, language_code="en", interim_results=interim)
        yield stt_service_pb2.StreamingRecognizeRequest(config=config)
        for frame in audio.split_chunks(audio.encode(samples, fmt), fmt, 20):
            yield stt_service_pb2.StreamingRecognizeRequest(audio=frame)

    return [reply async for reply in stub.StreamingRecognize(requests(), timeout=30)]


async def test_stt_timed_finds_each_burst_and_reports_the_fixed_transcript() -> None:
    settings = SttSettings.from_env(
        host="127.0.0.1", port=0, metrics_port=-1, engine="timed", timed_transcript="hello there", timed_decode_ms=10
    )
    async with serving(SttApp, settings) as channel:
        stub = stt_service_pb2_grpc.SttServiceStub(channel)
        replies = await recognize(stub, bursts(1000, 800, 600, 800))
    kinds = []
    for reply in replies:
        if reply.WhichOneof("streaming_response") == "speech_event":
            kinds.append(
                stt_service_pb2.SpeechEventType.Name(reply.speech_event.type).removeprefix("SPEECH_EVENT_TYPE_")
            )
        else:
            kinds.append("FINAL" if reply.result.is_final else "INTERIM")
    assert [k for k in kinds if k != "INTERIM"] == ["SPEECH_STARTED", "SPEECH_ENDED", "FINAL"] * 2
    assert "INTERIM" in kinds
    finals = [r.result for r in replies if r.WhichOneof("streaming_response") == "result" and r.result.is_final]
    assert [f.transcript for f in finals] == ["hello there", "hello there"]
    ends = [
        r.speech_event.offset_ms
        for r in replies
        if r.speech_event.type == stt_service_pb2.SPEECH_EVENT_TYPE_SPEECH_ENDED
    ]
    assert ends == [1000, 2400]


async def test_stt_timed_silence_gives_nothing_and_open_speech_is_closed_at_end() -> None:
    settings = SttSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, engine="timed", timed_decode_ms=0)
    async with serving(SttApp, settings) as channel:
        stub = stt_service_pb2_grpc.SttServiceStub(channel)
        assert await recognize(stub, np.zeros(RATE, dtype=np.float32)) == []
        replies = await recognize(stub, bursts(0, 200, 500), interim=False)
    assert replies[-1].result.is_final
    assert replies[-1].result.transcript == "what are your branch hours"


def test_stt_timed_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_STT_TIMED_DECODE_MS"):
        SttSettings.from_env(engine="timed", timed_decode_ms=-1)
    with pytest.raises(SettingsError, match="VOICEBOT_STT_TIMED_TRANSCRIPT"):
        SttSettings.from_env(engine="timed", timed_transcript=" ")


def llm_request(
    *messages: tuple[llm_service_pb2.Role.ValueType, str], tools: bool = True
) -> llm_service_pb2.StreamingGenerateRequest:
    definitions = [
        llm_service_pb2.ToolDefinition(
            name="loan_payment", description="quote", parameters_json_schema='{"type": "object"}'
        )
    ]
    return llm_service_pb2.StreamingGenerateRequest(
        request_id="r1",
        messages=[llm_service_pb2.ChatMessage(role=role, content=content) for role, content in messages],
        tools=definitions if tools else [],
    )


def calls_of(replies: list[llm_service_pb2.StreamingGenerateResponse]) -> list[llm_service_pb2.ToolCallDelta]:
    return [r.tool_call_delta for r in replies if r.WhichOneof("output") == "tool_call_delta"]


async def test_llm_timed_calls_the_offered_tool_then_answers() -> None:
    settings = LlmSettings.from_env(
        host="127.0.0.1", port=0, metrics_port=-1, engine="timed", timed_ttft_ms=1, timed_token_ms=1,
        timed_answer="Open nine to five.",
    )  # fmt: skip
    async with serving(LlmApp, settings) as channel:
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        first = [r async for r in stub.StreamingGenerate(llm_request((llm_service_pb2.ROLE_USER, "hours?")))]
        after_tool = llm_request((llm_service_pb2.ROLE_USER, "hours?"))
        call = llm_service_pb2.ToolCall(id=calls_of(first)[0].id, name="loan_payment", arguments_json="{}")
        after_tool.messages.append(llm_service_pb2.ChatMessage(role=llm_service_pb2.ROLE_ASSISTANT, tool_calls=[call]))
        after_tool.messages.append(
            llm_service_pb2.ChatMessage(role=llm_service_pb2.ROLE_TOOL, content="{}", tool_call_id=call.id)
        )
        second = [r async for r in stub.StreamingGenerate(after_tool)]
        plain = [r async for r in stub.StreamingGenerate(llm_request((llm_service_pb2.ROLE_USER, "hi"), tools=False))]
    calls = calls_of(first)
    assert calls[0].name == "loan_payment"
    assert json.loads("".join(c.arguments_delta for c in calls))["term_months"] == 60
    assert first[-1].end.finish_reason == llm_service_pb2.FINISH_REASON_TOOL_CALLS
    for replies in (second, plain):
        assert "".join(r.text_delta for r in replies) == "Open nine to five."
        assert replies[-1].end.finish_reason == llm_service_pb2.FINISH_REASON_STOP
    # Every message says how long the model had taken by then; the last one is the total.
    for replies in (first, second, plain):
        elapsed = [r.elapsed_ms for r in replies]
        assert elapsed == sorted(elapsed)
        assert elapsed[-1] == replies[-1].end.total_ms
        assert elapsed[0] == replies[-1].end.time_to_first_token_ms


def test_llm_timed_tool_arguments_must_be_an_object() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_LLM_TIMED_TOOL_ARGUMENTS"):
        LlmApp(LlmSettings.from_env(engine="timed", timed_tool_arguments="[1]"))


async def test_tts_timed_speaks_a_tone_of_the_texts_duration_in_the_requested_format() -> None:
    settings = TtsSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, engine="timed", timed_synthesis_ms=1)
    mulaw = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hertz=8000, channels=1)

    async def requests() -> AsyncIterator[tts_service_pb2.StreamingSynthesizeRequest]:
        yield tts_service_pb2.StreamingSynthesizeRequest(
            config=tts_service_pb2.SynthesisConfig(output_format=mulaw, max_chunk_ms=100)
        )
        yield tts_service_pb2.StreamingSynthesizeRequest(text="Hello there. How are you today?")

    async with serving(TtsApp, settings) as channel:
        stub = tts_service_pb2_grpc.TtsServiceStub(channel)
        chunks = [c async for c in stub.StreamingSynthesize(requests(), timeout=30)]
    assert {c.segment_text for c in chunks} == {"Hello there.", "How are you today?"}
    assert all(c.audio_format.encoding == audio_pb2.AUDIO_ENCODING_MULAW for c in chunks)
    assert max(c.duration_ms for c in chunks) <= 100
    for segment, text in ((0, "Hello there."), (1, "How are you today?")):
        spoken_ms = sum(c.duration_ms for c in chunks if c.segment_id == segment)
        assert abs(spoken_ms - (len(text) * 65 + 200)) <= 40
    assert sum(len(c.audio) for c in chunks) == sum(c.duration_ms for c in chunks) * 8


def test_tts_timed_rate_is_checked() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_TTS_TIMED_SAMPLE_RATE_HERTZ"):
        TtsApp(TtsSettings.from_env(engine="timed", timed_sample_rate_hertz=100))
