"""EventSink against a real gRPC Ingest endpoint that can be turned off: nothing lost, order kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from mesh import dial
from orchestrator.events import EventSink, new_event
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc


class Analytics(analytics_service_pb2_grpc.AnalyticsServiceServicer):
    """Records ingested event ids in arrival order; answers UNAVAILABLE while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.fail_next = 0
        self.received: list[str] = []

    async def Ingest(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: grpc.aio.ServicerContext
    ) -> pb.IngestResponse:
        """Take the events unless down (or told to fail this many more streams)."""
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "analytics is down")
        count = 0
        async for request in request_iterator:
            self.received.extend(event.event_id for event in request.events)
            count += len(request.events)
        return pb.IngestResponse(accepted_count=count)

    def first_seen(self) -> list[str]:
        """Ids in the order they first arrived (redelivery is allowed; analytics drops duplicates)."""
        return list(dict.fromkeys(self.received))


@pytest.fixture
async def analytics() -> AsyncIterator[tuple[Analytics, str]]:
    """The recording servicer on a loopback port."""
    servicer = Analytics()
    server = grpc.aio.server()
    analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(0)


def events(count: int) -> Iterator[pb.Event]:
    for n in range(count):
        yield new_event(f"session-{n % 3}", turn_completed=pb.TurnCompleted(turn_index=n))


def files(folder: Path, pattern: str = "*") -> list[Path]:
    return list(folder.glob(pattern))


async def until(condition: object, within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@contextlib.asynccontextmanager
async def sink_on(target: str, capacity: int, folder: Path) -> AsyncIterator[EventSink]:
    """A started sink sending to ``target``; stopped (and flushed) on the way out."""
    async with dial(target) as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        sink = EventSink(lambda: stub, capacity, folder)
        sink.start()
        yield sink
        await sink.stop()


def emit_all(sink: EventSink, count: int) -> list[str]:
    """Emit ``count`` fresh events; their ids in order."""
    sent = []
    for event in events(count):
        sent.append(event.event_id)
        sink.emit(event)
    return sent


async def test_events_spilled_during_an_outage_all_arrive_in_order_once_analytics_is_back(
    analytics: tuple[Analytics, str], tmp_path: Path
) -> None:
    servicer, target = analytics
    servicer.down = True
    async with sink_on(target, 5, tmp_path) as sink:
        sent = emit_all(sink, 23)
        await until(lambda: len(files(tmp_path, "events-*.jsonl")) >= 3)
        assert sink.pending == 23
        servicer.down = False
        sent += emit_all(sink, 4)  # more events while the backlog drains
        await until(lambda: sink.pending == 0)
    assert servicer.first_seen() == sent
    assert not files(tmp_path), "delivered spill files are removed"


async def test_a_failed_batch_goes_back_in_front(analytics: tuple[Analytics, str], tmp_path: Path) -> None:
    servicer, target = analytics
    servicer.fail_next = 2
    async with sink_on(target, 1000, tmp_path) as sink:
        sent = emit_all(sink, 250)
        await until(lambda: sink.pending == 0)
    assert servicer.first_seen() == sent


async def test_what_is_waiting_at_shutdown_is_delivered_by_the_next_process(
    analytics: tuple[Analytics, str], tmp_path: Path
) -> None:
    servicer, target = analytics
    servicer.down = True
    async with dial(target) as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        first = EventSink(lambda: stub, 4, tmp_path)
        first.start()
        sent = emit_all(first, 10)
        await first.stop(flush_timeout_s=0.3)
        assert not files(tmp_path, "*.partial")
        servicer.down = False
        second = EventSink(lambda: stub, 4, tmp_path)
        second.start()
        assert second.pending == 10
        await until(lambda: second.pending == 0)
        await second.stop()
    assert servicer.first_seen() == sent
