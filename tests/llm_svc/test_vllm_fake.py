"""The vllm engine against a fake vLLM (tests/llm_svc/fake_vllm.py): the vLLM-only parts of the API.

vLLM needs a GPU and cannot run here; the fake reproduces its wire format (Mistral tool-call
stream, usage chunk, LoRA endpoints and their 400/404/500 bodies) over real HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import grpc
import pytest

from llm_svc.config import LlmSettings
from tests.conftest import free_port
from tests.llm_svc.conftest import (
    NOT_SERVING,
    SERVING,
    collect,
    eventually,
    health_status,
    request,
    serve,
    settings,
    user,
)
from tests.llm_svc.fake_vllm import FakeVllm, text_reply, tool_call_reply
from voicebot.v1 import llm_service_pb2 as pb

LOAN_TOOL = pb.ToolDefinition(
    name="loan_payment",
    description="Monthly payment of a loan.",
    parameters_json_schema=json.dumps(
        {
            "type": "object",
            "properties": {
                "principal": {"type": "number"},
                "annual_rate_percent": {"type": "number"},
                "term_months": {"type": "integer"},
            },
            "required": ["principal", "annual_rate_percent", "term_months"],
        }
    ),
)


def vllm_settings(fake: FakeVllm, **overrides: Any) -> LlmSettings:
    return settings(**{"engine": "vllm", "vllm_base_url": fake.url, **overrides})


async def test_mistral_tool_call_stream_becomes_tool_call_deltas(fake_vllm: FakeVllm) -> None:
    arguments = {"principal": 20000, "annual_rate_percent": 6, "term_months": 60}
    fake_vllm.reply = lambda body: tool_call_reply("loan_payment", arguments, call_id="Xy7Kq2Lm9")
    async with serve(vllm_settings(fake_vllm)) as running:
        got = await collect(
            running.stub,
            request(
                pb.ChatMessage(role=pb.ROLE_SYSTEM, content="You are a bank assistant."),
                user("twenty thousand dollars over five years at six percent"),
                tools=[LOAN_TOOL],
            ),
        )
    first, *rest = got.call_deltas
    assert (first.index, first.id, first.name) == (0, "Xy7Kq2Lm9", "loan_payment")
    assert re.fullmatch(r"[A-Za-z0-9]{9}", first.id)
    assert rest
    assert all(d.id == "" and d.name == "" for d in rest), "id and name only on the first delta"
    assert json.loads(got.calls[0]["arguments"]) == arguments
    assert got.text == ""
    assert got.end is not None
    assert got.end.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    # Usage comes from vLLM's last chunk (stream_options.include_usage).
    assert got.end.usage.completion_tokens == len(got.call_deltas)
    assert got.end.usage.prompt_tokens > 0
    body = fake_vllm.chat_requests()[-1]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "mistral-7b-instruct"
    assert body["tool_choice"] == "auto"
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["name"] == "loan_payment"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["principal", "annual_rate_percent", "term_months"]


async def test_tool_results_and_sampling_go_to_the_server_in_openai_form(fake_vllm: FakeVllm) -> None:
    fake_vllm.reply = lambda body: text_reply("Your payment is about $386.66 a month.")
    messages = [
        user("loan of twenty thousand over five years at six percent"),
        pb.ChatMessage(
            role=pb.ROLE_ASSISTANT,
            tool_calls=[pb.ToolCall(id="Xy7Kq2Lm9", name="loan_payment", arguments_json='{"principal": 20000}')],
        ),
        pb.ChatMessage(
            role=pb.ROLE_TOOL, content='{"monthly_payment": 386.66}', tool_call_id="Xy7Kq2Lm9", name="loan_payment"
        ),
    ]
    async with serve(vllm_settings(fake_vllm)) as running:
        got = await collect(
            running.stub,
            request(
                *messages,
                tools=[LOAN_TOOL],
                tool_choice=pb.TOOL_CHOICE_NONE,
                max_tokens=50,
                stop=["\n\n"],
                sampling=pb.SamplingParams(temperature=0.0, top_p=0.9, seed=42),
            ),
        )
    assert got.text == "Your payment is about $386.66 a month."
    assert got.end is not None
    assert got.end.finish_reason == pb.FINISH_REASON_STOP
    body = fake_vllm.chat_requests()[-1]
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "Xy7Kq2Lm9",
                "type": "function",
                "function": {"name": "loan_payment", "arguments": '{"principal": 20000}'},
            }
        ],
    }
    assert body["messages"][2] == {
        "role": "tool",
        "content": '{"monthly_payment": 386.66}',
        "tool_call_id": "Xy7Kq2Lm9",
        "name": "loan_payment",
    }
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.0, pytest.approx(0.9), 42)
    assert (body["max_tokens"], body["stop"], body["tool_choice"]) == (50, ["\n\n"], "none")


async def test_finished_streams_leave_their_connection_in_the_pool(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm)) as running:
        for _ in range(3):
            got = await collect(running.stub, request(user("hello")))
            assert got.end is not None
    # Start-up (health, models, warm-up) and three generations, one after another, on one connection.
    assert fake_vllm.connections == 1


async def test_api_key_is_sent_as_bearer_token(fake_vllm: FakeVllm) -> None:
    fake_vllm.api_key = "s3cret"
    async with serve(vllm_settings(fake_vllm, vllm_api_key="s3cret")) as running:
        got = await collect(running.stub, request(user("hello")))
    assert got.end is not None
    assert {r["_auth"] for r in fake_vllm.requests if r["_path"] != "/health"} == {"Bearer s3cret"}


async def test_adapters_load_list_select_and_unload(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm)) as running:
        loaded = await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/adapters/collections"))
        assert (loaded.adapter.name, loaded.adapter.path, loaded.already_loaded) == (
            "collections",
            "/adapters/collections",
            False,
        )
        again = await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/adapters/collections"))
        assert again.already_loaded is True
        listed = await running.stub.ListAdapters(pb.ListAdaptersRequest())
        assert listed.base_model == "mistral-7b-instruct"
        assert [(a.name, a.path) for a in listed.adapters] == [("collections", "/adapters/collections")]

        got = await collect(running.stub, request(user("hello"), adapter="collections"))
        assert fake_vllm.chat_requests()[-1]["model"] == "collections"
        assert got.end is not None
        assert got.end.model == "mistral-7b-instruct+collections"

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/adapters/other"))
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "/adapters/collections" in (err.value.details() or "")

        assert (await running.stub.UnloadAdapter(pb.UnloadAdapterRequest(name="collections"))).was_loaded is True
        assert (await running.stub.UnloadAdapter(pb.UnloadAdapterRequest(name="collections"))).was_loaded is False
        assert list((await running.stub.ListAdapters(pb.ListAdaptersRequest())).adapters) == []


async def test_concurrent_loads_of_one_adapter_are_idempotent(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm)) as running:
        results = await asyncio.gather(
            *(running.stub.LoadAdapter(pb.LoadAdapterRequest(name="fraud", path="/adapters/fraud")) for _ in range(4))
        )
    assert all(r.adapter.path == "/adapters/fraud" for r in results)
    assert sum(not r.already_loaded for r in results) >= 1
    assert fake_vllm.adapters == {"fraud": "/adapters/fraud"}


async def test_unknown_adapter_is_not_found_and_other_calls_still_served(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm)) as running:
        bad = collect(running.stub, request(user("hello"), adapter="nope"))
        good = collect(running.stub, request(user("hello")))
        results = await asyncio.gather(bad, good, return_exceptions=True)
    error = results[0]
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in (error.details() or "")
    assert "ListAdapters" in (error.details() or "")
    assert not isinstance(results[1], BaseException)
    assert results[1].end is not None


@pytest.mark.parametrize("method", ["load", "unload"])
async def test_runtime_lora_off_is_failed_precondition_naming_the_fix(fake_vllm: FakeVllm, method: str) -> None:
    fake_vllm.runtime_lora = False
    async with serve(vllm_settings(fake_vllm)) as running:
        call = (
            running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/adapters/c"))
            if method == "load"
            else running.stub.UnloadAdapter(pb.UnloadAdapterRequest(name="collections"))
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        got = await collect(running.stub, request(user("still there?")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in (err.value.details() or "")
    assert "--enable-lora" in (err.value.details() or "")
    assert got.end is not None


async def test_lora_disabled_on_the_server_is_failed_precondition(fake_vllm: FakeVllm) -> None:
    fake_vllm.lora_enabled = False
    async with serve(vllm_settings(fake_vllm)) as running:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/adapters/c"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--enable-lora" in (err.value.details() or "")


async def test_adapter_path_the_server_cannot_find_is_invalid_argument(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm)) as running:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="collections", path="/missing/c"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/missing/c" in (err.value.details() or "")


async def test_adapter_rpcs_need_the_admin_token(fake_vllm: FakeVllm) -> None:
    config = vllm_settings(fake_vllm, auth_token="user-token", admin_token="admin-token")
    load = pb.LoadAdapterRequest(name="collections", path="/adapters/c")
    async with serve(config) as running:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.LoadAdapter(load)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.UnloadAdapter(pb.UnloadAdapterRequest(name="collections"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with serve(config, token="user-token") as running:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.LoadAdapter(load)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (await running.stub.ListAdapters(pb.ListAdaptersRequest())).base_model == "mistral-7b-instruct"
    async with serve(config, token="admin-token") as running:
        assert (await running.stub.LoadAdapter(load)).adapter.name == "collections"


async def test_server_context_limit_error_is_invalid_argument(fake_vllm: FakeVllm) -> None:
    fake_vllm.max_model_len = 300
    async with serve(vllm_settings(fake_vllm, context_tokens=1_000_000)) as running:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(running.stub, request(user("hello " * 300), max_tokens=100))
        got = await collect(running.stub, request(user("hello"), max_tokens=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "maximum context length is 300 tokens" in (err.value.details() or "")
    assert got.end is not None


async def test_error_event_mid_stream_ends_the_rpc_with_its_status(fake_vllm: FakeVllm) -> None:
    error = {"message": "engine died", "type": "InternalServerError", "param": None, "code": 500}
    fake_vllm.reply = lambda body: [*text_reply("Hello there"), {"_error": error}]
    async with serve(vllm_settings(fake_vllm)) as running:
        texts: list[str] = []

        async def read() -> None:
            async for response in running.stub.StreamingGenerate(request(user("hello")), timeout=30):
                texts.append(response.text_delta)

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read()
    assert "".join(texts) == "Hello there"
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "engine died" in (err.value.details() or "")


async def test_cancelling_the_rpc_closes_the_stream_to_vllm(fake_vllm: FakeVllm) -> None:
    fake_vllm.chunk_delay_s = 0.05
    fake_vllm.reply = lambda body: text_reply("word " * 200)
    async with serve(vllm_settings(fake_vllm)) as running:
        call = running.stub.StreamingGenerate(request(user("tell me a story")), timeout=60)
        seen = 0
        async for _ in call:
            seen += 1
            if seen == 3:
                break
        call.cancel()

        async def closed() -> bool:
            return fake_vllm.disconnects == 1

        await eventually(closed)


async def test_health_flips_when_generation_fails_while_health_endpoint_says_ok(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm, health_interval_s=0.1, health_timeout_s=5)) as running:
        assert await health_status(running.channel) == SERVING
        fake_vllm.generation_fails = True

        async def not_serving() -> bool:
            return await health_status(running.channel) == NOT_SERVING

        await eventually(not_serving)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(running.stub, request(user("hello")))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        fake_vllm.generation_fails = False

        async def serving() -> bool:
            return await health_status(running.channel) == SERVING

        await eventually(serving)


async def test_unreachable_server_at_start_stays_not_serving_then_recovers() -> None:
    port = free_port()
    fake = FakeVllm()
    config = settings(engine="vllm", vllm_base_url=f"http://127.0.0.1:{port}", startup_retry_s=0.1, connect_retries=0)
    async with serve(config, ready=False) as running:
        assert await health_status(running.channel) == NOT_SERVING
        bad = collect(running.stub, request(user("hello")))
        other = running.stub.ListAdapters(pb.ListAdaptersRequest(), timeout=10)
        results = await asyncio.gather(bad, other, return_exceptions=True)
        for error in results:
            assert isinstance(error, grpc.aio.AioRpcError)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert f"127.0.0.1:{port}" in (error.details() or "")
        assert not running.starting.done()
        await fake.start(port)
        try:
            await asyncio.wait_for(running.starting, 30)
            assert await health_status(running.channel) == SERVING
            got = await collect(running.stub, request(user("hello")))
            assert got.end is not None
        finally:
            await fake.stop()


async def test_server_going_away_is_unavailable_and_not_serving(fake_vllm: FakeVllm) -> None:
    async with serve(vllm_settings(fake_vllm, health_interval_s=60, connect_retries=0)) as running:
        await fake_vllm.stop()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(running.stub, request(user("hello")))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "unreachable" in (err.value.details() or "")

        # The failed request wakes the monitor long before its 60 s interval.
        async def not_serving() -> bool:
            return await health_status(running.channel) == NOT_SERVING

        await eventually(not_serving)
