"""Bad requests: each gets its status code and a message naming the problem, and the service serves on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from tests.llm_svc.conftest import Running, collect, request, serve, settings, user
from voicebot.v1 import llm_service_pb2 as pb

CONTEXT_TOKENS = 4096


def tool(name: str = "get_balance", schema: str = '{"type": "object", "properties": {}}') -> pb.ToolDefinition:
    return pb.ToolDefinition(name=name, description="d", parameters_json_schema=schema)


INVALID = grpc.StatusCode.INVALID_ARGUMENT
CASES = {
    "no messages": (request(), INVALID, "messages is empty"),
    "role unspecified": (request(pb.ChatMessage(content="hi")), INVALID, "messages[0].role is ROLE_UNSPECIFIED"),
    "unknown role": (
        request(user("hi"), pb.ChatMessage(role=7, content="x")),
        INVALID,
        "messages[1].role: unknown role 7",
    ),
    "empty user content": (request(user("")), INVALID, "messages[0].content is empty"),
    "content too long": (request(user("a" * 32769)), INVALID, "at most 32768"),
    "tool result without call id": (
        request(user("hi"), pb.ChatMessage(role=pb.ROLE_TOOL, content="{}")),
        INVALID,
        "messages[1].tool_call_id is required",
    ),
    "tool calls on a user message": (
        request(pb.ChatMessage(role=pb.ROLE_USER, content="hi", tool_calls=[pb.ToolCall(id="a", name="x")])),
        INVALID,
        "only assistant messages carry tool calls",
    ),
    "tool arguments not json": (
        request(
            user("hi"),
            pb.ChatMessage(role=pb.ROLE_ASSISTANT, tool_calls=[pb.ToolCall(id="a", name="x", arguments_json="{no")]),
        ),
        INVALID,
        "messages[1].tool_calls[0].arguments_json is not valid JSON",
    ),
    "schema not json": (request(user("hi"), tools=[tool(schema="{not json")]), INVALID, "is not valid JSON"),
    "schema not an object": (request(user("hi"), tools=[tool(schema="[1, 2]")]), INVALID, "must be a JSON object"),
    "schema type not object": (
        request(user("hi"), tools=[tool(schema='{"type": "string"}')]),
        INVALID,
        '"type": "object"',
    ),
    "schema invalid json schema": (
        request(user("hi"), tools=[tool(schema='{"type": "object", "properties": 5}')]),
        INVALID,
        "tools[0].parameters_json_schema (get_balance) is not a valid JSON Schema",
    ),
    "bad tool name": (request(user("hi"), tools=[tool(name="get balance!")]), INVALID, "tools[0].name"),
    "duplicate tool names": (request(user("hi"), tools=[tool(), tool()]), INVALID, "duplicate tool names"),
    "too many tools": (
        request(user("hi"), tools=[tool(name=f"t{i}") for i in range(33)]),
        INVALID,
        "tools has 33 entries; at most 32",
    ),
    "required tool choice without tools": (
        request(user("hi"), tool_choice=pb.TOOL_CHOICE_REQUIRED),
        INVALID,
        "TOOL_CHOICE_REQUIRED",
    ),
    "max tokens too large": (request(user("hi"), max_tokens=4097), INVALID, "max_tokens is 4097; allowed 1-4096"),
    "max tokens negative": (request(user("hi"), max_tokens=-1), INVALID, "max_tokens is -1"),
    "temperature out of range": (
        request(user("hi"), sampling=pb.SamplingParams(temperature=2.5)),
        INVALID,
        "sampling.temperature is 2.5; allowed 0.0-2.0",
    ),
    "top_p zero": (request(user("hi"), sampling=pb.SamplingParams(top_p=0.0)), INVALID, "sampling.top_p"),
    "too many stops": (request(user("hi"), stop=["a", "b", "c", "d", "e"]), INVALID, "stop has 5 strings"),
    "stop too long": (request(user("hi"), stop=["x" * 33]), INVALID, "stop[0] is 33 characters"),
    "request id too long": (request(user("hi"), request_id="r" * 129), INVALID, "request_id is 129 characters"),
    "bad adapter name": (request(user("hi"), adapter="no spaces allowed"), INVALID, "adapter 'no spaces allowed'"),
    "unknown adapter": (request(user("hi"), adapter="collections"), grpc.StatusCode.NOT_FOUND, "'collections'"),
    "prompt over the context limit": (
        request(user("word " * 6000)),
        INVALID,
        f"exceed the context limit of {CONTEXT_TOKENS} tokens",
    ),
    "prompt plus max tokens over the context limit": (
        request(user("word " * 3000), max_tokens=4000),
        INVALID,
        "max_tokens 4000",
    ),
}


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    async with serve(settings(context_tokens=CONTEXT_TOKENS)) as running:
        yield running


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_request_is_refused_and_others_are_served(running: Running, case: str) -> None:
    bad, code, message = CASES[case]
    results = await asyncio.gather(
        collect(running.stub, bad),
        collect(running.stub, request(user("what time do you open"))),
        return_exceptions=True,
    )
    error, good = results
    assert isinstance(error, grpc.aio.AioRpcError), f"{case}: not refused"
    assert error.code() == code
    assert message in (error.details() or "")
    assert not isinstance(good, BaseException)
    assert good.end is not None


async def test_an_empty_schema_means_a_tool_without_arguments(running: Running) -> None:
    got = await collect(running.stub, request(user("hi"), tools=[tool(schema="")]))
    assert got.end is not None


async def test_load_adapter_validates_name_and_path(running: Running) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="", path="/a"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name ''" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.LoadAdapter(pb.LoadAdapterRequest(name="ok", path=""))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "path must be 1-1024 characters" in (err.value.details() or "")
