"""Fuzz every LlmService RPC (banking engine): random chats, tools, sampling, adapters, raw garbage, cancels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    ALWAYS_ALLOWED,
    ENUMS,
    FLOATS,
    GARBAGE,
    INT32,
    INT64,
    C,
    Harness,
    Peers,
    examples,
    fuzz_beside,
    harness,
    raw_stream,
    raw_unary,
    stream,
    text,
    unary,
)
from voicebot.v1 import llm_service_pb2 as pb
from voicebot.v1 import llm_service_pb2_grpc

SERVICE = "/voicebot.v1.LlmService/"
GENERATE_ALLOWED = ALWAYS_ALLOWED | {C.NOT_FOUND, C.UNAVAILABLE}
ADAPTER_ALLOWED = ALWAYS_ALLOWED | {C.NOT_FOUND, C.ALREADY_EXISTS, C.FAILED_PRECONDITION, C.UNAVAILABLE}


@pytest.fixture(scope="module")
def h(peers: Peers) -> Iterator[Harness]:
    with harness("llm", peers) as h:
        channel = h.run(h.connect(peers.target("llm")))
        stub = llm_service_pb2_grpc.LlmServiceStub(channel)
        request = pb.StreamingGenerateRequest(
            messages=[pb.ChatMessage(role=pb.ROLE_USER, content="what are your branch opening hours")]
        )

        async def healthy() -> None:
            responses = [r async for r in stub.StreamingGenerate(request, timeout=30)]
            assert responses[-1].HasField("end")
            assert "".join(r.text_delta for r in responses)

        yield from fuzz_beside(h, healthy)


def stub(h: Harness) -> llm_service_pb2_grpc.LlmServiceStub:
    return llm_service_pb2_grpc.LlmServiceStub(h.channel)


TOOL_CALLS = st.builds(pb.ToolCall, id=text(16), name=text(16), arguments_json=st.one_of(text(), st.just('{"a": 1}')))
MESSAGES = st.builds(
    pb.ChatMessage,
    role=ENUMS,
    content=st.one_of(text(200), st.sampled_from(["what is my balance", "lend me 20000 over 5 years", "hi"])),
    tool_calls=st.lists(TOOL_CALLS, max_size=2),
    tool_call_id=text(16),
    name=text(16),
)
SCHEMAS = st.one_of(
    text(),
    st.sampled_from(['{"type": "object"}', '{"type": "array"}', "[]", "null", '{"type": "object", "properties": 5}']),
)
TOOLS = st.builds(pb.ToolDefinition, name=text(70), description=text(1100), parameters_json_schema=SCHEMAS)


def sampling(temperature: float | None, top_p: float | None, seed: int | None) -> pb.SamplingParams:
    params = pb.SamplingParams()
    if temperature is not None:
        params.temperature = temperature
    if top_p is not None:
        params.top_p = top_p
    if seed is not None:
        params.seed = seed
    return params


SAMPLING = st.builds(sampling, st.one_of(st.none(), FLOATS), st.one_of(st.none(), FLOATS), st.one_of(st.none(), INT64))
GENERATES = st.builds(
    pb.StreamingGenerateRequest,
    request_id=text(130),
    messages=st.lists(MESSAGES, max_size=5) | st.lists(MESSAGES, min_size=257, max_size=258),
    tools=st.lists(TOOLS, max_size=3),
    tool_choice=ENUMS,
    sampling=SAMPLING,
    max_tokens=INT32,
    stop=st.lists(text(34), max_size=5),
    adapter=st.one_of(st.just(""), text(70)),
)


PLAUSIBLE = st.builds(
    pb.StreamingGenerateRequest,
    messages=st.lists(
        st.builds(
            pb.ChatMessage,
            role=st.sampled_from([pb.ROLE_SYSTEM, pb.ROLE_USER, pb.ROLE_USER, pb.ROLE_ASSISTANT]),
            content=st.one_of(
                text(80), st.sampled_from(["what is my balance", "lend me 20000 over 5 years", "branch hours?"])
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    tool_choice=st.sampled_from([0, 1, 2, 3]),
    max_tokens=st.one_of(st.just(0), st.integers(1, 64)),
    stop=st.lists(st.text(min_size=1, max_size=4), max_size=2),
)
"""Requests that pass validation more often, so the engine itself gets odd but valid input."""


@examples(ci=80, full=4500)
@given(request=st.one_of(GENERATES, PLAUSIBLE), read_gap=st.sampled_from([0.0, 0.0, 0.0, 0.01]))
def test_generate(h: Harness, request: pb.StreamingGenerateRequest, read_gap: float) -> None:
    h.run(stream(h, "StreamingGenerate", stub(h).StreamingGenerate, request, GENERATE_ALLOWED, read_gap_s=read_gap))


@examples(ci=30, full=1500)
@given(request=st.one_of(GENERATES, PLAUSIBLE), cancel_after=st.integers(0, 3))
def test_generate_cancelled(h: Harness, request: pb.StreamingGenerateRequest, cancel_after: int) -> None:
    call = stub(h).StreamingGenerate
    h.run(stream(h, "StreamingGenerate cancel", call, request, GENERATE_ALLOWED, cancel_after=cancel_after))


@examples(ci=40, full=2000)
@given(kind=st.integers(0, 2), name=text(70), path=text(1100))
def test_adapters(h: Harness, kind: int, name: str, path: str) -> None:
    if kind == 0:
        h.run(
            unary(h, "LoadAdapter", stub(h).LoadAdapter, pb.LoadAdapterRequest(name=name, path=path), ADAPTER_ALLOWED)
        )
    elif kind == 1:
        h.run(unary(h, "UnloadAdapter", stub(h).UnloadAdapter, pb.UnloadAdapterRequest(name=name), ADAPTER_ALLOWED))
    else:
        h.run(unary(h, "ListAdapters", stub(h).ListAdapters, pb.ListAdaptersRequest(), {C.OK}))


@examples(ci=40, full=2000)
@given(method=st.sampled_from(["ListAdapters", "LoadAdapter", "UnloadAdapter", "StreamingGenerate"]), payload=GARBAGE)
def test_raw_bytes(h: Harness, method: str, payload: bytes) -> None:
    if method == "StreamingGenerate":
        h.run(raw_stream(h, SERVICE + method, "unary_stream", [payload], GENERATE_ALLOWED))
    else:
        h.run(raw_unary(h, SERVICE + method, payload, ADAPTER_ALLOWED))
