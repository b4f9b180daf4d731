"""Fuzz every AnalyticsService RPC: random events and batches, report ranges, watches cancelled early, garbage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import (
    ALWAYS_ALLOWED,
    ENUMS,
    GARBAGE,
    INT32,
    INT64,
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
    stream,
    text,
    unary,
)
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

SERVICE = "/voicebot.v1.AnalyticsService/"


@pytest.fixture(scope="module")
def h(peers: Peers) -> Iterator[Harness]:
    with harness("analytics", peers) as h:
        channel = h.run(h.connect(peers.target("analytics")))
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        runs = iter(range(10**9))

        async def healthy() -> None:
            n = next(runs)
            session = f"healthy-{n}"
            events = [
                pb.Event(event_id=f"{session}-a", session_id=session, call_started=pb.CallStarted(tenant="t")),
                pb.Event(
                    event_id=f"{session}-b",
                    session_id=session,
                    call_ended=pb.CallEnded(reason=pb.CALL_END_REASON_HANGUP),
                ),
            ]
            reply = await stub.Ingest(paced([pb.IngestRequest(events=events)]), timeout=30)
            assert reply.accepted_count == 2
            watched = [r async for r in stub.WatchSession(pb.WatchSessionRequest(session_id=session), timeout=30)]
            assert [r.event.event_id for r in watched] == [e.event_id for e in events]

        yield from fuzz_beside(h, healthy)


def stub(h: Harness) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
    return analytics_service_pb2_grpc.AnalyticsServiceStub(h.channel)


TIMESTAMPS = st.one_of(
    st.none(),
    st.builds(Timestamp, seconds=st.one_of(INT64, st.integers(-62135596800, 253402300799)), nanos=INT32),
)
DETAILS = st.one_of(
    st.none(),
    st.builds(pb.CallStarted, caller_id=text(), language_code=text(), voice=text(), adapter=text(), tenant=text()),
    st.builds(pb.CallEnded, reason=ENUMS, duration_ms=INT64, turn_count=INT32),
    st.builds(
        pb.TurnCompleted,
        turn_index=INT32,
        transcript=text(300),
        response_text=text(300),
        intent=text(),
        latency=st.builds(pb.TurnLatency, final_transcript_ms=INT32, first_token_ms=INT32, first_audio_ms=INT32),
        cache_hit=st.booleans(),
    ),
    st.builds(pb.ToolCalled, name=text(), arguments_json=text(), ok=st.booleans(), duration_ms=INT32),
    st.builds(pb.BargeIn, turn_index=INT32, playback_position_ms=INT32),
    st.builds(pb.AgentTransfer, reason=text(), turn_index=INT32),
    st.builds(pb.CallError, service=text(), code=text(), message=text(300), recovered=st.booleans()),
)
FIELD = {
    "CallStarted": "call_started",
    "CallEnded": "call_ended",
    "TurnCompleted": "turn_completed",
    "ToolCalled": "tool_called",
    "BargeIn": "barge_in",
    "AgentTransfer": "agent_transfer",
    "CallError": "call_error",
}


def event(event_id: str, session_id: str, time: Timestamp | None, detail: object) -> pb.Event:
    message = pb.Event(event_id=event_id, session_id=session_id)
    if time is not None:
        message.time.CopyFrom(time)
    if detail is not None:
        getattr(message, FIELD[type(detail).__name__]).CopyFrom(detail)
    return message


IDS = st.one_of(text(140), st.sampled_from(["s1", "s2", "e1"]))
EVENTS = st.builds(event, IDS, IDS, TIMESTAMPS, DETAILS)
BATCHES = st.one_of(
    st.builds(pb.IngestRequest, events=st.lists(EVENTS, max_size=6)),
    st.builds(lambda e, n: pb.IngestRequest(events=[e] * n), EVENTS, st.sampled_from([499, 500, 501])),
)


@examples(ci=30, full=3500)
@given(batches=st.lists(BATCHES, max_size=4), gap=st.sampled_from([0.0, 0.0, 0.01]))
def test_ingest(h: Harness, batches: list[pb.IngestRequest], gap: float) -> None:
    h.run(unary(h, "Ingest", stub(h).Ingest, paced(batches, gap_s=gap), ALWAYS_ALLOWED))


@examples(ci=15, full=500)
@given(batches=st.lists(BATCHES, min_size=1, max_size=2))
def test_ingest_left_open(h: Harness, batches: list[pb.IngestRequest]) -> None:
    """An ingest stream the client never closes waits for more batches: DEADLINE_EXCEEDED is its legitimate end."""
    requests = paced(batches, hold_open=True)
    allowed = ALWAYS_ALLOWED | {C.DEADLINE_EXCEEDED}
    h.run(unary(h, "Ingest open", stub(h).Ingest, requests, allowed, deadline_s=OPEN_DEADLINE_S))


def report_request(start: Timestamp | None, end: Timestamp | None, group: int) -> pb.GetReportRequest:
    request = pb.GetReportRequest(group_by=group)  # type: ignore[arg-type]
    if start is not None:
        request.start_time.CopyFrom(start)
    if end is not None:
        request.end_time.CopyFrom(end)
    return request


@examples(ci=50, full=2500)
@given(request=st.builds(report_request, TIMESTAMPS, TIMESTAMPS, ENUMS))
def test_get_report(h: Harness, request: pb.GetReportRequest) -> None:
    h.run(unary(h, "GetReport", stub(h).GetReport, request, ALWAYS_ALLOWED))


@examples(ci=30, full=1500)
@given(session=IDS, skip=st.booleans(), cancel_after=st.sampled_from([0, 1, 2, None]))
def test_watch(h: Harness, session: str, skip: bool, cancel_after: int | None) -> None:
    """A watch of a session that never ends waits for events: DEADLINE_EXCEEDED (short deadline) is legitimate."""
    request = pb.WatchSessionRequest(session_id=session, skip_history=skip)
    allowed = ALWAYS_ALLOWED | {C.DEADLINE_EXCEEDED}
    h.run(
        stream(
            h,
            "WatchSession",
            stub(h).WatchSession,
            request,
            allowed,
            cancel_after=cancel_after,
            deadline_s=OPEN_DEADLINE_S,
        )
    )


@examples(ci=40, full=2000)
@given(
    method=st.sampled_from(["Ingest", "GetReport", "WatchSession"]), payloads=st.lists(GARBAGE, min_size=1, max_size=3)
)
def test_raw_bytes(h: Harness, method: str, payloads: list[bytes]) -> None:
    allowed = ALWAYS_ALLOWED | {C.DEADLINE_EXCEEDED}
    if method == "GetReport":
        h.run(raw_unary(h, SERVICE + method, payloads[0], allowed))
    elif method == "Ingest":
        h.run(raw_stream(h, SERVICE + method, "stream_unary", payloads, allowed))
    else:
        h.run(raw_stream(h, SERVICE + method, "unary_stream", payloads, allowed))
