"""The vllm engine against a real OpenAI-compatible server: llama.cpp's, serving SmolLM2-135M.

vLLM itself needs a GPU; llama-cpp-python's server speaks the same streaming
``/v1/chat/completions`` API, so streaming, usage, cancellation and health are tested for real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from llm_svc.config import LlmSettings
from tests.llm_svc.conftest import (
    LLAMA_API_KEY,
    LLAMA_MODEL_ALIAS,
    NOT_SERVING,
    SERVING,
    LlamaServer,
    collect,
    health_status,
    request,
    serve,
    settings,
    user,
)
from voicebot.v1 import llm_service_pb2 as pb

pytestmark = pytest.mark.slow


def llama_settings(server: LlamaServer, **overrides: Any) -> LlmSettings:
    # llama.cpp has no /health: liveness is checked on /v1/models instead.
    base: dict[str, Any] = {
        "engine": "vllm",
        "vllm_base_url": server.url,
        "vllm_api_key": LLAMA_API_KEY,
        "health_path": "/v1/models",
        "context_tokens": 2048,
    }
    return settings(**{**base, **overrides})


async def test_streams_text_deltas_then_one_end_with_usage(llama_server: LlamaServer) -> None:
    async with serve(llama_settings(llama_server)) as running:
        got = await collect(
            running.stub,
            request(
                pb.ChatMessage(role=pb.ROLE_SYSTEM, content="You are a helpful bank assistant."),
                user("Say hello to the caller."),
                max_tokens=12,
                sampling=pb.SamplingParams(temperature=0.0, seed=7),
            ),
        )
    assert got.end is not None
    assert len(got.deltas) >= 2, "the answer must stream in pieces"
    assert got.text.strip()
    assert got.end.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)
    # llama.cpp sends no usage when streaming: completion tokens are the streamed chunks, the prompt estimated.
    assert got.end.usage.completion_tokens == len(got.deltas)
    assert got.end.usage.prompt_tokens > 0
    assert 0 < got.end.time_to_first_token_ms <= got.end.total_ms
    assert got.end.model == LLAMA_MODEL_ALIAS


async def test_max_tokens_stops_with_length(llama_server: LlamaServer) -> None:
    async with serve(llama_settings(llama_server)) as running:
        got = await collect(
            running.stub,
            request(
                user("Count from one to one hundred in words."),
                max_tokens=3,
                sampling=pb.SamplingParams(temperature=0.0),
            ),
        )
    assert got.end is not None
    assert got.end.finish_reason == pb.FINISH_REASON_LENGTH
    assert 1 <= len(got.deltas) <= 3


async def test_health_is_serving_after_the_warm_up_generation(llama_server: LlamaServer) -> None:
    async with serve(llama_settings(llama_server)) as running:
        assert await health_status(running.channel) == SERVING
        # The warm-up was a real one-token generation on the server.
        models = await running.stub.ListAdapters(pb.ListAdaptersRequest())
        assert models.base_model == LLAMA_MODEL_ALIAS
        assert list(models.adapters) == []


async def test_cancelling_the_rpc_closes_the_http_stream_to_the_server(llama_server: LlamaServer) -> None:
    before = llama_server.disconnects()
    async with serve(llama_settings(llama_server)) as running:
        call = running.stub.StreamingGenerate(
            request(
                user("Write a very long story about a bank, at least a thousand words."),
                max_tokens=1500,
                sampling=pb.SamplingParams(temperature=0.7, seed=1),
            ),
            timeout=120,
        )
        deltas = 0
        async for response in call:
            if response.WhichOneof("output") == "text_delta":
                deltas += 1
            if deltas == 3:
                break
        call.cancel()
        # The server notices the closed connection at its next token and logs it.
        for _ in range(300):
            if llama_server.disconnects() > before:
                break
            await asyncio.sleep(0.1)
        assert llama_server.disconnects() == before + 1
        # The service keeps serving.
        got = await collect(running.stub, request(user("Say OK."), max_tokens=2))
        assert got.end is not None


async def test_a_wrong_api_key_fails_precondition_and_start_up_keeps_retrying(llama_server: LlamaServer) -> None:
    config = llama_settings(llama_server, vllm_api_key="wrong", startup_retry_s=0.2)
    async with serve(config, ready=False) as running:
        assert await health_status(running.channel) == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(running.stub, request(user("hi"), max_tokens=2))
        assert not running.starting.done()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "VOICEBOT_LLM_VLLM_API_KEY" in (err.value.details() or "")


async def test_api_key_from_a_secret_file(llama_server: LlamaServer, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(LLAMA_API_KEY + "\n")
    config = llama_settings(llama_server, vllm_api_key="not-this-one", vllm_api_key_file=str(key_file))
    async with serve(config) as running:
        got = await collect(running.stub, request(user("Say OK."), max_tokens=2))
    assert got.end is not None
