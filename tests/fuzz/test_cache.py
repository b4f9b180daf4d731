"""Fuzz every CacheService RPC: random fields, unknown oneof choices, raw garbage, out-of-order warm streams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    ALWAYS_ALLOWED,
    FLOATS,
    GARBAGE,
    INT32,
    OPEN_DEADLINE_S,
    C,
    Harness,
    Peers,
    examples,
    fuzz_beside,
    harness,
    paced,
    raw_stream,
    raw_unary,
    text,
    unary,
)
from voicebot.v1 import cache_service_pb2 as pb
from voicebot.v1 import cache_service_pb2_grpc

SERVICE = "/voicebot.v1.CacheService/"
# Store also refuses personal data with FAILED_PRECONDITION; the rest document INVALID_ARGUMENT only.
STORE_ALLOWED = ALWAYS_ALLOWED | {C.FAILED_PRECONDITION}
HEALTHY_QUERY = "what are your branch opening hours"


@pytest.fixture(scope="module")
def h(peers: Peers) -> Iterator[Harness]:
    with harness("cache", peers) as h:
        channel = h.run(h.connect(peers.target("cache")))
        stub = cache_service_pb2_grpc.CacheServiceStub(channel)
        scope = pb.CacheScope(tenant="healthy", language_code="en-US", intent="branch_hours")
        answer = "Our branches open at nine."

        async def healthy() -> None:
            removals = REMOVALS[0]
            stored = await stub.Store(pb.StoreRequest(query=HEALTHY_QUERY, answer=answer, scope=scope), timeout=30)
            found = await stub.Lookup(pb.LookupRequest(query=HEALTHY_QUERY, scope=scope), timeout=30)
            if not found.hit:  # a fuzzed Clear or Invalidate may have removed it in between, nothing else
                assert REMOVALS[0] != removals
                return
            assert found.answer == answer
            assert found.entry_id == stored.entry_id

        yield from fuzz_beside(h, healthy)


REMOVALS = [0]
"""Clear and Invalidate calls the fuzzer made: the only reason the healthy stream's entry may vanish."""


def stub(h: Harness) -> cache_service_pb2_grpc.CacheServiceStub:
    return cache_service_pb2_grpc.CacheServiceStub(h.channel)


SCOPES = st.builds(pb.CacheScope, tenant=text(), language_code=text(20), intent=text())
OPT_THRESHOLD = st.one_of(st.none(), FLOATS)
METADATA = st.dictionaries(text(70), text(1100), max_size=20)


def lookup_request(query: str, scope: pb.CacheScope, threshold: float | None) -> pb.LookupRequest:
    request = pb.LookupRequest(query=query, scope=scope)
    if threshold is not None:
        request.threshold = threshold
    return request


LOOKUPS = st.builds(lookup_request, text(1100), SCOPES, OPT_THRESHOLD)
STORES = st.builds(
    pb.StoreRequest, query=text(1100), answer=text(200), scope=SCOPES, ttl_seconds=INT32, metadata=METADATA
)
PLAUSIBLE_STORES = st.builds(
    pb.StoreRequest,
    query=st.one_of(st.text(min_size=1, max_size=80), st.sampled_from(["what are your hours", "block my card"])),
    answer=st.one_of(
        st.text(min_size=1, max_size=200), st.just("Call us on 0800 123 456 for card 4111 1111 1111 1111.")
    ),
    scope=st.builds(pb.CacheScope, tenant=st.text(max_size=8), intent=st.text(max_size=8)),
    ttl_seconds=st.integers(0, 100),
    metadata=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
)
WARMS = st.builds(pb.WarmRequest, query=text(200), answer=text(200), scope=SCOPES, ttl_seconds=INT32, metadata=METADATA)


def invalidate_request(
    choice: int, entry_id: str, scope: pb.CacheScope, query: pb.LookupRequest
) -> pb.InvalidateRequest:
    if choice == 0:
        return pb.InvalidateRequest()  # no selector at all
    if choice == 1:
        return pb.InvalidateRequest(entry_id=entry_id)
    if choice == 2:
        return pb.InvalidateRequest(scope=scope)
    match = pb.QueryMatch(query=query.query, scope=query.scope)
    if query.HasField("threshold"):
        match.threshold = query.threshold
    return pb.InvalidateRequest(query_match=match)


INVALIDATES = st.builds(invalidate_request, st.integers(0, 3), text(200), SCOPES, LOOKUPS)


@examples(ci=60, full=2500)
@given(request=LOOKUPS)
def test_lookup(h: Harness, request: pb.LookupRequest) -> None:
    h.run(unary(h, "Lookup", stub(h).Lookup, request, ALWAYS_ALLOWED))


@examples(ci=60, full=2000)
@given(request=st.one_of(STORES, PLAUSIBLE_STORES))
def test_store(h: Harness, request: pb.StoreRequest) -> None:
    h.run(unary(h, "Store", stub(h).Store, request, STORE_ALLOWED))


@examples(ci=40, full=1500)
@given(request=INVALIDATES)
def test_invalidate(h: Harness, request: pb.InvalidateRequest) -> None:
    REMOVALS[0] += 1
    h.run(unary(h, "Invalidate", stub(h).Invalidate, request, ALWAYS_ALLOWED))


@examples(ci=20, full=500)
@given(scope=st.one_of(st.none(), SCOPES))
def test_clear_and_stats(h: Harness, scope: pb.CacheScope | None) -> None:
    request = pb.ClearRequest() if scope is None else pb.ClearRequest(scope=scope)
    REMOVALS[0] += 1
    h.run(unary(h, "Clear", stub(h).Clear, request, ALWAYS_ALLOWED))
    h.run(unary(h, "GetStats", stub(h).GetStats, pb.GetStatsRequest(), {C.OK}))


@examples(ci=30, full=1500)
@given(requests=st.lists(WARMS, max_size=8), gap=st.sampled_from([0.0, 0.0, 0.01]))
def test_warm(h: Harness, requests: list[pb.WarmRequest], gap: float) -> None:
    h.run(unary(h, "Warm", stub(h).Warm, paced(requests, gap_s=gap), ALWAYS_ALLOWED))


@examples(ci=20, full=500)
@given(requests=st.lists(WARMS, min_size=1, max_size=4))
def test_warm_left_open_times_out(h: Harness, requests: list[pb.WarmRequest]) -> None:
    """A warm stream the client never closes waits for more pairs: DEADLINE_EXCEEDED is the legitimate end."""
    requests_open = paced(requests, hold_open=True)
    h.run(unary(h, "Warm open", stub(h).Warm, requests_open, {C.DEADLINE_EXCEEDED}, deadline_s=OPEN_DEADLINE_S))


UNARY_METHODS = ["Lookup", "Store", "Invalidate", "GetStats", "Clear"]


@examples(ci=60, full=1500)
@given(method=st.sampled_from(UNARY_METHODS), payload=GARBAGE)
def test_raw_bytes_unary(h: Harness, method: str, payload: bytes) -> None:
    REMOVALS[0] += 1  # garbage may decode as a valid Clear or Invalidate
    h.run(raw_unary(h, SERVICE + method, payload, STORE_ALLOWED))


@examples(ci=20, full=500)
@given(payloads=st.lists(GARBAGE, max_size=4))
def test_raw_bytes_warm(h: Harness, payloads: list[bytes]) -> None:
    h.run(raw_stream(h, SERVICE + "Warm", "stream_unary", payloads, ALWAYS_ALLOWED))


def test_case_budget_covers_full_run() -> None:
    """The full profile's per-test counts add up to at least 10,000 cases for the service."""
    assert 2500 + 2000 + 1500 + 500 * 2 + 1500 + 500 + 1500 + 500 >= 10_000
