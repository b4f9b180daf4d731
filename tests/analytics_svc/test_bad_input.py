"""Every bad input the contract lists: exact status, a message naming the problem, and the
service still serving a call that was already in progress."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import grpc
import pytest

from tests.analytics_svc.builders import BASE_TIME, call_ended, call_started, turn
from tests.analytics_svc.conftest import Analytics
from tests.analytics_svc.test_report import stamp
from voicebot.v1 import analytics_service_pb2 as pb


async def expect_error_while_serving(
    analytics: Analytics, bad_call: Callable[[], Awaitable[object]], code: grpc.StatusCode, *words: str
) -> None:
    """Run ``bad_call`` while a WatchSession on another session is open; that watch must go on."""
    watch = analytics.stub.WatchSession(pb.WatchSessionRequest(session_id="live"), timeout=30)
    await analytics.ingest([call_started("live", event_id="live-1")])
    first = await watch.read()
    assert first.event.event_id == "live-1"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bad_call()
    assert caught.value.code() == code
    details = caught.value.details() or ""
    for word in words:
        assert word in details, details

    await analytics.ingest([turn("live", event_id="live-2"), call_ended("live", event_id="live-3")])
    rest = []
    while (response := await watch.read()) is not grpc.aio.EOF:
        rest.append(response.event.event_id)
    assert rest == ["live-2", "live-3"]
    assert await watch.code() == grpc.StatusCode.OK


def ingest(analytics: Analytics, *batches: list[pb.Event]) -> Callable[[], Awaitable[object]]:
    return lambda: analytics.ingest(*batches)


def without(event: pb.Event, field: str) -> pb.Event:
    event.ClearField(field)
    return event


@pytest.mark.parametrize(
    ("batches", "words"),
    [
        ([[without(turn("s"), "event_id")]], ["batch 0", "events[0].event_id", "empty", "1-128"]),
        ([[turn("s"), without(turn("s"), "session_id")]], ["events[1].session_id", "empty"]),
        ([[turn("s")], [pb.Event(event_id="x", session_id="s")]], ["batch 1", "events[0].detail", "not set"]),
        ([[turn("s")] * 501], ["501 events", "limit 500"]),
        ([[]], ["events is empty", "1-500"]),
        ([[turn("s", event_id="x" * 129)]], ["event_id has 129 characters", "limit 128"]),
        ([[turn("s" * 129)]], ["session_id has 129 characters", "limit 128"]),
    ],
    ids=["no-event-id", "no-session-id", "no-detail", "batch-over-500", "empty-batch", "long-id", "long-session"],
)
async def test_ingest_rejects(analytics: Analytics, batches: list[list[pb.Event]], words: list[str]) -> None:
    await expect_error_while_serving(analytics, ingest(analytics, *batches), grpc.StatusCode.INVALID_ARGUMENT, *words)


async def test_ingest_rejects_a_time_out_of_range(analytics: Analytics) -> None:
    event = turn("s")
    event.time.seconds = 253_402_300_800
    await expect_error_while_serving(
        analytics, ingest(analytics, [event]), grpc.StatusCode.INVALID_ARGUMENT, "events[0].time", "9999-12-31"
    )


async def test_batches_before_a_bad_one_are_stored(analytics: Analytics) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await analytics.ingest([turn("s", event_id="good")], [pb.Event(event_id="bad", session_id="s")])
    response = await analytics.ingest([turn("s", event_id="good")])
    assert (response.accepted_count, response.duplicate_count) == (0, 1)


def get_report(analytics: Analytics, request: pb.GetReportRequest) -> Callable[[], Awaitable[object]]:
    return lambda: analytics.stub.GetReport(request)


async def test_report_rejects_end_before_start(analytics: Analytics) -> None:
    request = pb.GetReportRequest(start_time=stamp(BASE_TIME), end_time=stamp(BASE_TIME - timedelta(seconds=1)))
    await expect_error_while_serving(
        analytics, get_report(analytics, request), grpc.StatusCode.INVALID_ARGUMENT, "end_time is before start_time"
    )


async def test_report_rejects_a_range_over_366_days(analytics: Analytics) -> None:
    request = pb.GetReportRequest(start_time=stamp(BASE_TIME), end_time=stamp(BASE_TIME + timedelta(days=367)))
    await expect_error_while_serving(
        analytics, get_report(analytics, request), grpc.StatusCode.INVALID_ARGUMENT, "367.0 days", "limit 366"
    )


async def test_report_rejects_an_unknown_grouping(analytics: Analytics) -> None:
    request = pb.GetReportRequest(group_by=42)  # type: ignore[arg-type]
    await expect_error_while_serving(
        analytics, get_report(analytics, request), grpc.StatusCode.INVALID_ARGUMENT, "group_by", "42"
    )


async def test_report_refuses_a_range_with_too_many_events(make_analytics: Callable[..., Awaitable[Analytics]]) -> None:
    analytics = await make_analytics(max_report_events=2)
    await analytics.ingest([turn("s"), turn("s"), turn("s")])
    await expect_error_while_serving(
        analytics,
        get_report(analytics, pb.GetReportRequest()),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "4 events",  # three turns and the watched call's start
        "max_report_events",
    )


async def test_watch_rejects_an_empty_session_id(analytics: Analytics) -> None:
    async def bad() -> object:
        return [r async for r in analytics.stub.WatchSession(pb.WatchSessionRequest(session_id=""), timeout=10)]

    await expect_error_while_serving(analytics, bad, grpc.StatusCode.INVALID_ARGUMENT, "session_id is empty")


async def test_many_bad_calls_at_once_do_not_disturb_good_ones(analytics: Analytics) -> None:
    bad = [analytics.ingest([pb.Event(event_id=f"b{i}", session_id="s")]) for i in range(20)]
    good = [analytics.ingest([turn(f"g{i}")]) for i in range(20)]
    results = await asyncio.gather(*bad, *good, return_exceptions=True)
    assert all(isinstance(r, grpc.aio.AioRpcError) for r in results[:20])
    assert all(isinstance(r, pb.IngestResponse) and r.accepted_count == 1 for r in results[20:])
