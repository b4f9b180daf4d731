"""Delivery of call events to analytics_svc that never blocks a call, loses nothing and keeps order.

Events go into a bounded in-memory buffer; one background task keeps sending them in batches
over ``Ingest``. While analytics is down or slow the buffer fills. When it is full, the whole
buffer (with the new event) is written to a new spill file, the newest in the spill folder, and
the buffer starts empty again. So every spill file is older than every buffered event, and the
sender delivers in order: spill files oldest first, then the buffer. A file is written once,
complete, and only deleted after all of it was delivered; files left by an earlier process are
delivered too. A batch that fails goes back in front of everything still waiting. Event ids make
redelivery safe: analytics drops duplicates.

Every text is redacted before it is queued, so no card or account number reaches analytics, the
spill files or the logs. File writes and reads run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

log = logging.getLogger("orchestrator.events")

BATCH = 100
STREAM_S = 30.0
PATTERN = "events-*.jsonl"


def new_event(session_id: str, **detail: object) -> pb.Event:
    """An event with a fresh id and the current time; ``detail`` is one oneof field."""
    event = pb.Event(event_id=uuid.uuid4().hex, session_id=session_id, **detail)  # type: ignore[arg-type]
    event.time.GetCurrentTime()
    return event


def _write(path: Path, events: Sequence[pb.Event]) -> None:
    """Write ``events`` as JSON lines to a new file, atomically (a crash leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w") as out:
        for event in events:
            out.write(json_format.MessageToJson(event, indent=None) + "\n")
    partial.replace(path)


def _read(path: Path) -> list[pb.Event]:
    """The events of one spill file."""
    with path.open() as lines:
        return [json_format.Parse(line, pb.Event()) for line in lines if line.strip()]


def _count(path: Path) -> int:
    with path.open() as lines:
        return sum(1 for line in lines if line.strip())


class EventSink:
    """Buffers events and ships them to analytics; see the module docstring."""

    def __init__(
        self, stub: Callable[[], analytics_service_pb2_grpc.AnalyticsServiceStub], capacity: int, spill_dir: Path
    ) -> None:
        """Send through ``stub()``; hold ``capacity`` events in memory, spill to ``spill_dir`` beyond that."""
        self._stub = stub
        self._buffer: deque[pb.Event] = deque()
        self._capacity = max(1, capacity)
        self._spill_dir = spill_dir
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._last_seq = 0
        self._on_disk = 0
        self._in_flight = 0

    def start(self) -> None:
        """Count what an earlier process left in the spill folder and start the background sender."""
        self._on_disk = sum(_count(path) for path in self._files())
        self._task = asyncio.create_task(self._run(), name="analytics-sender")
        if self._on_disk:
            self._wakeup.set()

    async def stop(self, flush_timeout_s: float = 3.0) -> None:
        """Try to deliver what is waiting, then spill the buffer to disk and stop."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained(), flush_timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*self._writes, return_exceptions=True)
        if self._buffer:
            self._spill_now(self._next_path(), list(self._buffer))
            self._buffer.clear()

    async def _drained(self) -> None:
        while self.pending:
            self._wakeup.set()
            await asyncio.sleep(0.05)

    @property
    def pending(self) -> int:
        """Events not yet delivered: in memory (buffered or being sent) plus spilled."""
        return len(self._buffer) + self._in_flight + self._on_disk

    def emit(self, event: pb.Event) -> None:
        """Queue an event (already redacted). Never blocks, never raises."""
        self._buffer.append(event)
        if len(self._buffer) > self._capacity:
            moved, self._buffer = list(self._buffer), deque()
            self._on_disk += len(moved)  # counted at once: the sender must not overtake the write
            write = asyncio.create_task(self._spill(self._next_path(), moved), name="analytics-spill")
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
        self._wakeup.set()

    def _files(self) -> list[Path]:
        """Spill files, oldest first (their names sort by when they were written)."""
        return sorted(self._spill_dir.glob(PATTERN)) if self._spill_dir.exists() else []

    def _next_path(self) -> Path:
        self._last_seq = max(time.time_ns(), self._last_seq + 1)
        return self._spill_dir / f"events-{self._last_seq:020d}.jsonl"

    async def _spill(self, path: Path, events: list[pb.Event]) -> None:
        try:
            await asyncio.to_thread(_write, path, events)
        except OSError as exc:
            self._on_disk -= len(events)
            log.error("cannot spill %d analytics events: %s", len(events), exc)

    def _spill_now(self, path: Path, events: list[pb.Event]) -> None:
        """Spill without a thread: at shutdown, or a failed batch of at most ``BATCH`` events."""
        try:
            _write(path, events)
            self._on_disk += len(events)
        except OSError as exc:
            log.error("cannot spill %d analytics events: %s", len(events), exc)

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._deliver()
                backoff = 0.2
            except (grpc.aio.AioRpcError, OSError) as exc:
                log.warning("analytics unavailable, %d events held: %s", self.pending, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wakeup.set()

    async def _deliver(self) -> None:
        """Send everything waiting, in order: while any spill file exists, files first."""
        while self.pending:
            if self._on_disk:
                await self._deliver_spilled()
                continue
            floor = self._last_seq
            batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
            self._in_flight = len(batch)
            try:
                await self._send(batch)
            except BaseException:
                self._put_back(batch, floor)
                raise
            finally:
                self._in_flight = 0

    async def _deliver_spilled(self) -> None:
        await asyncio.gather(*self._writes)  # a file is read only once it is whole
        files = self._files()
        if not files:
            self._on_disk = 0  # a write failed, or a file was removed by hand
        for path in files:
            events = await asyncio.to_thread(_read, path)
            for start in range(0, len(events), BATCH):
                await self._send(events[start : start + BATCH])
            path.unlink()
            self._on_disk = max(0, self._on_disk - len(events))

    def _put_back(self, batch: list[pb.Event], floor: int) -> None:
        """Return an undelivered batch in front of everything waiting.

        Nothing was on disk when it was taken (``floor`` was the newest spill name then), so any
        spill file now holds newer events, and the batch goes into a file that sorts before them.
        """
        if not self._on_disk:
            self._buffer.extendleft(reversed(batch))
        else:
            self._spill_now(self._spill_dir / f"events-{floor:020d}.jsonl", batch)

    async def _send(self, batch: list[pb.Event]) -> None:
        async def requests() -> AsyncIterator[pb.IngestRequest]:
            yield pb.IngestRequest(events=batch)

        await self._stub().Ingest(requests(), timeout=STREAM_S)
