"""WatchSession over real gRPC: replay, live events, the end of a call, many and slow watchers."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from analytics_svc import metrics
from tests.analytics_svc.builders import call_ended, call_started, turn
from tests.analytics_svc.conftest import Analytics, AnalyticsFactory
from voicebot.v1 import analytics_service_pb2 as pb


def open_watch(analytics: Analytics, session_id: str, *, skip_history: bool = False) -> grpc.aio.UnaryStreamCall:
    request = pb.WatchSessionRequest(session_id=session_id, skip_history=skip_history)
    return analytics.stub.WatchSession(request, timeout=60)


async def read_ids(call: grpc.aio.UnaryStreamCall, count: int | None = None) -> list[str]:
    """Event ids of the next ``count`` responses, or of all until the stream ends."""
    ids: list[str] = []
    while count is None or len(ids) < count:
        response = await call.read()
        if response is grpc.aio.EOF:
            break
        ids.append(response.event.event_id)
    return ids


async def subscribed(analytics: Analytics, session_id: str, watchers: int) -> None:
    """Wait until the service holds ``watchers`` live watchers on the session."""
    # The hub has no event to wait on; poll the server under test (no timing is asserted).
    while analytics.app.hub.count(session_id) < watchers:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def test_replay_then_live_then_end(analytics: Analytics) -> None:
    await analytics.ingest([call_started("s", event_id="1"), turn("s", event_id="2")])
    watch = open_watch(analytics, "s")
    assert await read_ids(watch, 2) == ["1", "2"]
    await analytics.ingest([turn("s", event_id="3", index=1)], [call_ended("s", event_id="4")])
    assert await read_ids(watch) == ["3", "4"]
    assert await watch.code() == grpc.StatusCode.OK


async def test_events_come_back_redacted_as_stored(analytics: Analytics) -> None:
    await analytics.ingest([turn("s", event_id="1", transcript="my card is 4111 1111 1111 1111")])
    watch = open_watch(analytics, "s")
    response = await watch.read()
    assert response.event.turn_completed.transcript == "my card is [CARD]"
    assert response.event.HasField("time")
    watch.cancel()


async def test_other_sessions_are_not_sent(analytics: Analytics) -> None:
    watch = open_watch(analytics, "mine", skip_history=True)
    await subscribed(analytics, "mine", 1)
    await analytics.ingest([turn("other", event_id="x"), turn("mine", event_id="1"), call_ended("mine", event_id="2")])
    assert await read_ids(watch) == ["1", "2"]


async def test_skip_history_sends_only_new_events(analytics: Analytics) -> None:
    await analytics.ingest([call_started("s", event_id="old")])
    watch = open_watch(analytics, "s", skip_history=True)
    await subscribed(analytics, "s", 1)
    await analytics.ingest([turn("s", event_id="new"), call_ended("s", event_id="end")])
    assert await read_ids(watch) == ["new", "end"]


async def test_an_ended_call_replays_and_ends(analytics: Analytics) -> None:
    await analytics.ingest([call_started("s", event_id="1"), call_ended("s", event_id="2")])
    assert await read_ids(open_watch(analytics, "s")) == ["1", "2"]
    assert await read_ids(open_watch(analytics, "s", skip_history=True)) == []


async def test_a_long_history_is_replayed_in_pages(analytics: Analytics) -> None:
    ids = [f"e{i:04d}" for i in range(1200)]
    await analytics.ingest(
        *[[turn("s", event_id=i) for i in ids[start : start + 400]] for start in range(0, 1200, 400)]
    )
    watch = open_watch(analytics, "s")
    assert await read_ids(watch, 1200) == ids
    await analytics.ingest([call_ended("s", event_id="end")])
    assert await read_ids(watch) == ["end"]


async def test_nothing_is_lost_or_repeated_while_replay_and_ingest_overlap(analytics: Analytics) -> None:
    expected = [f"e{i:03d}" for i in range(600)]

    async def writer() -> None:
        for start in range(0, 600, 20):
            await analytics.ingest([turn("s", event_id=i) for i in expected[start : start + 20]])
        await analytics.ingest([call_ended("s", event_id="end")])

    async def watcher(delay_batches: int) -> list[str]:
        for _ in range(delay_batches):
            await asyncio.sleep(0)
        return await read_ids(open_watch(analytics, "s"))

    results = await asyncio.gather(writer(), *(watcher(n * 7) for n in range(5)))
    for ids in results[1:]:
        assert ids == [*expected, "end"]


async def test_several_watchers_get_the_same_events(analytics: Analytics) -> None:
    watches = [open_watch(analytics, "s", skip_history=True) for _ in range(3)]
    await subscribed(analytics, "s", 3)
    await analytics.ingest([call_started("s", event_id="1"), turn("s", event_id="2"), call_ended("s", event_id="3")])
    results = await asyncio.gather(*(read_ids(w) for w in watches))
    assert results == [["1", "2", "3"]] * 3
    assert analytics.app.hub.count("s") == 0


async def test_watchers_per_session_are_limited(make_analytics: AnalyticsFactory) -> None:
    analytics = await make_analytics(max_watchers_per_session=2)
    first, second = open_watch(analytics, "s", skip_history=True), open_watch(analytics, "s", skip_history=True)
    await subscribed(analytics, "s", 2)
    third = open_watch(analytics, "s", skip_history=True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await third.read()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_watchers_per_session=2" in (caught.value.details() or "")
    other_session = open_watch(analytics, "t", skip_history=True)
    await subscribed(analytics, "t", 1)
    first.cancel()
    while analytics.app.hub.count("s") > 1:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    fourth = open_watch(analytics, "s", skip_history=True)
    await subscribed(analytics, "s", 2)
    await analytics.ingest([call_ended("s", event_id="s-end"), call_ended("t", event_id="t-end")])
    assert await read_ids(second) == ["s-end"]
    assert await read_ids(fourth) == ["s-end"]
    assert await read_ids(other_session) == ["t-end"]


async def test_a_watcher_that_falls_behind_is_dropped_and_ingest_goes_on(make_analytics: AnalyticsFactory) -> None:
    analytics = await make_analytics(watcher_queue_size=4)
    dropped_before = metrics.WATCHERS_DROPPED._value.get()
    slow = open_watch(analytics, "s", skip_history=True)
    fine = open_watch(analytics, "t", skip_history=True)
    await subscribed(analytics, "s", 1)
    await subscribed(analytics, "t", 1)
    # One commit holds 10 events of the session: more than the watcher's queue of 4.
    response = await analytics.ingest([turn("s", index=i) for i in range(10)])
    assert response.accepted_count == 10
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_ids(slow)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "watcher_queue_size" in (caught.value.details() or "")
    assert metrics.WATCHERS_DROPPED._value.get() == dropped_before + 1
    assert analytics.app.hub.count("s") == 0
    await analytics.ingest([turn("t", event_id="t1"), call_ended("t", event_id="t2")])
    assert await read_ids(fine) == ["t1", "t2"]
