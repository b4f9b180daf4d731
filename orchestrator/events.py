"""Delivery of call events to analytics_svc that never blocks a call and loses nothing.

Events go into a bounded in-memory buffer; one background task keeps an ``Ingest`` stream
open and sends them in batches. While analytics is down or slow the buffer fills; when it is
full, further events are appended to JSONL files in a spill folder, and the sender drains those
files (oldest first) once analytics answers again. Event ids make redelivery safe: analytics
drops duplicates. Every text is redacted before it is queued, so no card or account number
reaches analytics, the spill files or the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
from google.protobuf import json_format

from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

log = logging.getLogger("orchestrator.events")

BATCH = 100
STREAM_S = 30.0


def new_event(session_id: str, **detail: object) -> pb.Event:
    """An event with a fresh id and the current time; ``detail`` is one oneof field."""
    event = pb.Event(event_id=uuid.uuid4().hex, session_id=session_id, **detail)  # type: ignore[arg-type]
    event.time.GetCurrentTime()
    return event


class EventSink:
    """Buffers events and ships them to analytics; see the module docstring."""

    def __init__(
        self, stub: Callable[[], analytics_service_pb2_grpc.AnalyticsServiceStub], capacity: int, spill_dir: Path
    ) -> None:
        """Send through ``stub()``; hold ``capacity`` events in memory, spill the rest to ``spill_dir``."""
        self._stub = stub
        self._buffer: deque[pb.Event] = deque()
        self._capacity = capacity
        self._spill_dir = spill_dir
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.spilled = 0

    def start(self) -> None:
        """Start the background sender."""
        self._task = asyncio.create_task(self._run(), name="analytics-sender")

    async def stop(self, flush_timeout_s: float = 3.0) -> None:
        """Try to deliver what is buffered, then spill the rest to disk and stop."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained(), flush_timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._buffer:
            self._spill(list(self._buffer))
            self._buffer.clear()

    async def _drained(self) -> None:
        while self._buffer:
            self._wakeup.set()
            await asyncio.sleep(0.05)

    @property
    def pending(self) -> int:
        """Events not yet delivered: in memory plus spilled."""
        return len(self._buffer) + self._spilled_count()

    def emit(self, event: pb.Event) -> None:
        """Queue an event (already redacted). Never blocks, never raises."""
        if len(self._buffer) >= self._capacity:
            self._spill([event])
        else:
            self._buffer.append(event)
        self._wakeup.set()

    def _spill(self, events: list[pb.Event]) -> None:
        try:
            self._spill_dir.mkdir(parents=True, exist_ok=True)
            path = self._spill_dir / f"events-{int(time.time() // 60)}.jsonl"
            with path.open("a") as out:
                for event in events:
                    out.write(json_format.MessageToJson(event, indent=None) + "\n")
            self.spilled += len(events)
        except OSError as exc:
            log.error("cannot spill %d analytics events: %s", len(events), exc)

    def _spilled_count(self) -> int:
        if not self._spill_dir.exists():
            return 0
        return sum(sum(1 for _ in p.open()) for p in self._spill_dir.glob("events-*.jsonl"))

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._deliver_spilled()
                while self._buffer:
                    batch = [self._buffer[i] for i in range(min(BATCH, len(self._buffer)))]
                    await self._send([batch])
                    for _ in batch:
                        self._buffer.popleft()
                backoff = 0.2
            except (grpc.aio.AioRpcError, OSError) as exc:
                log.warning("analytics unavailable, %d events held: %s", self.pending, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wakeup.set()

    async def _send(self, batches: list[list[pb.Event]]) -> None:
        async def requests() -> AsyncIterator[pb.IngestRequest]:
            for batch in batches:
                yield pb.IngestRequest(events=batch)

        reply = await self._stub().Ingest(requests(), timeout=STREAM_S)
        self.sent += reply.accepted_count + reply.duplicate_count

    async def _deliver_spilled(self) -> None:
        for path in sorted(self._spill_dir.glob("events-*.jsonl")) if self._spill_dir.exists() else []:
            events = [json_format.Parse(line, pb.Event()) for line in path.read_text().splitlines() if line.strip()]
            for start in range(0, len(events), BATCH):
                await self._send([events[start : start + BATCH]])
            path.unlink()
