"""AnalyticsService: protobuf <-> domain types, validation, delegation to the store and hub."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from analytics_svc.config import AnalyticsSettings
from analytics_svc.engine import (
    EventKind,
    EventRecord,
    EventStore,
    Grouping,
    IngestResult,
    Report,
    ReportQuery,
    ReportRow,
)
from analytics_svc.redact import redact_message
from analytics_svc.watch import WatchHub, watch
from mesh.errors import InvalidArgument
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

MAX_BATCH_EVENTS = 500
MAX_ID_CHARS = 128
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_US = 24 * 3600 * 1_000_000
_DAY_US = 24 * 3600 * 1_000_000
_EARLIEST_US = -62_135_596_800 * 1_000_000  # 0001-01-01T00:00:00Z, the earliest valid Timestamp
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_DETAILS = ", ".join(kind.value for kind in EventKind)
_GROUPINGS = {
    pb.REPORT_GROUPING_UNSPECIFIED: Grouping.NONE,
    pb.REPORT_GROUPING_HOUR: Grouping.HOUR,
    pb.REPORT_GROUPING_DAY: Grouping.DAY,
    pb.REPORT_GROUPING_INTENT: Grouping.INTENT,
    pb.REPORT_GROUPING_ADAPTER: Grouping.ADAPTER,
}
_END_REASON_PREFIX = len("CALL_END_REASON_")


class AnalyticsServicer(analytics_service_pb2_grpc.AnalyticsServiceServicer):
    """Serves Ingest, GetReport and WatchSession."""

    def __init__(self, store: EventStore, hub: WatchHub, settings: AnalyticsSettings) -> None:
        """Serve from ``store``; live events come from ``hub``."""
        self.store = store
        self.hub = hub
        self.inflight = settings.stream_inflight_batches

    async def Ingest(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: grpc.aio.ServicerContext
    ) -> pb.IngestResponse:
        """Validate, redact and store each batch; up to ``stream_inflight_batches`` are written at once."""
        accepted = duplicates = 0
        pending: deque[asyncio.Task[IngestResult]] = deque()
        try:
            batch = 0
            async for request in request_iterator:
                records = to_records(request, batch, time.time_ns() // 1000)
                pending.append(asyncio.ensure_future(self.store.ingest(records)))
                batch += 1
                while len(pending) >= self.inflight or (pending and pending[0].done()):
                    result = await pending.popleft()
                    accepted += result.accepted
                    duplicates += result.duplicates
            while pending:
                result = await pending.popleft()
                accepted += result.accepted
                duplicates += result.duplicates
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return pb.IngestResponse(accepted_count=accepted, duplicate_count=duplicates)

    async def GetReport(self, request: pb.GetReportRequest, context: grpc.aio.ServicerContext) -> pb.GetReportResponse:
        """Aggregate the requested range."""
        report = await self.store.report(to_query(request, time.time_ns() // 1000))
        return report_message(report)

    async def WatchSession(
        self, request: pb.WatchSessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchSessionResponse]:
        """Replay the session's stored events (unless skip_history), then stream live ones."""
        _check_id(request.session_id, "session_id")
        async for stored in watch(self.hub, self.store, request.session_id, skip_history=request.skip_history):
            yield pb.WatchSessionResponse(event=pb.Event.FromString(stored.record.payload))


def _check_id(value: str, name: str) -> None:
    if not value:
        raise InvalidArgument(f"{name} is empty (1-{MAX_ID_CHARS} characters)")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{name} has {len(value)} characters (limit {MAX_ID_CHARS})")


def _check_time(stamp: Timestamp, name: str) -> None:
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000):
        raise InvalidArgument(f"{name} is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z")


def to_records(request: pb.IngestRequest, batch: int, now_us: int) -> list[EventRecord]:
    """Validate one batch and turn its events into redacted records (the request is redacted in place).

    Raises:
        InvalidArgument: the batch is empty or over 500 events, or an event lacks its id,
            session id or detail, or has an id over 128 characters or a time out of range.
    """
    events = request.events
    if not events:
        raise InvalidArgument(f"batch {batch}: events is empty (1-{MAX_BATCH_EVENTS} events per batch)")
    if len(events) > MAX_BATCH_EVENTS:
        raise InvalidArgument(f"batch {batch}: {len(events)} events (limit {MAX_BATCH_EVENTS} per batch)")
    for i, event in enumerate(events):
        where = f"batch {batch}: events[{i}]"
        _check_id(event.event_id, f"{where}.event_id")
        _check_id(event.session_id, f"{where}.session_id")
        if event.WhichOneof("detail") is None:
            raise InvalidArgument(f"{where}.detail is not set (one of {_DETAILS})")
        if event.HasField("time"):
            _check_time(event.time, f"{where}.time")
    return [to_record(event, now_us) for event in events]


def to_record(event: pb.Event, now_us: int) -> EventRecord:
    """Redact ``event`` in place, fill in its time if unset, and extract its report columns."""
    redact_message(event)
    if event.HasField("time"):
        time_us = event.time.seconds * 1_000_000 + event.time.nanos // 1000
    else:
        event.time.FromMicroseconds(now_us)
        time_us = now_us
    kind = EventKind(str(event.WhichOneof("detail")))
    columns: dict[str, Any]
    if kind is EventKind.TURN_COMPLETED:
        turn = event.turn_completed
        lat = turn.latency
        columns = {
            "turn_index": turn.turn_index,
            "intent": turn.intent,
            "adapter": turn.adapter,
            "cache_hit": turn.cache_hit,
            "interrupted": turn.interrupted,
            "latency_ms": (
                lat.final_transcript_ms,
                lat.first_token_ms,
                lat.first_audio_ms,
                lat.cache_ms,
                lat.stt_compute_ms,
                lat.llm_compute_ms,
                lat.tts_compute_ms,
            ),
        }
    elif kind is EventKind.CALL_STARTED:
        columns = {"adapter": event.call_started.adapter}
    elif kind is EventKind.CALL_ENDED:
        ended = event.call_ended
        reason = pb.CallEndReason.Name(ended.reason) if ended.reason in pb.CallEndReason.values() else ""
        columns = {
            "duration_ms": ended.duration_ms,
            "end_reason": reason[_END_REASON_PREFIX:].lower() or "unspecified",
        }
    elif kind is EventKind.TOOL_CALLED:
        tool = event.tool_called
        columns = {
            "turn_index": tool.turn_index,
            "tool_name": tool.name,
            "ok": tool.ok,
            "duration_ms": tool.duration_ms,
        }
    elif kind is EventKind.BARGE_IN:
        columns = {"turn_index": event.barge_in.turn_index}
    elif kind is EventKind.AGENT_TRANSFER:
        columns = {"turn_index": event.agent_transfer.turn_index}
    else:
        error = event.call_error
        columns = {"error_service": error.service, "error_code": error.code, "ok": error.recovered}
    return EventRecord(
        event_id=event.event_id,
        session_id=event.session_id,
        time_us=time_us,
        kind=kind,
        payload=event.SerializeToString(),
        **columns,
    )


def to_query(request: pb.GetReportRequest, now_us: int) -> ReportQuery:
    """Validate a report request and resolve its defaults.

    Raises:
        InvalidArgument: end before start, a range over 366 days, a time out of range or an
            unknown grouping.
    """
    if request.HasField("end_time"):
        _check_time(request.end_time, "end_time")
        end_us = request.end_time.ToMicroseconds()
    else:
        end_us = now_us
    if request.HasField("start_time"):
        _check_time(request.start_time, "start_time")
        start_us = request.start_time.ToMicroseconds()
    else:  # the day before end_time, but never before the earliest time a Timestamp can hold
        start_us = max(_EARLIEST_US, end_us - DEFAULT_RANGE_US)
    if end_us < start_us:
        raise InvalidArgument("end_time is before start_time")
    if end_us - start_us > MAX_RANGE_DAYS * _DAY_US:
        raise InvalidArgument(f"the range spans {(end_us - start_us) / _DAY_US:.1f} days (limit {MAX_RANGE_DAYS} days)")
    grouping = _GROUPINGS.get(request.group_by)
    if grouping is None:
        raise InvalidArgument(f"group_by has unknown value {int(request.group_by)}")
    return ReportQuery(start_us=start_us, end_us=end_us, grouping=grouping)


def report_message(report: Report) -> pb.GetReportResponse:
    """The GetReportResponse of ``report``."""
    response = pb.GetReportResponse(total=_row_message(report.total), rows=[_row_message(row) for row in report.rows])
    response.start_time.FromMicroseconds(report.start_us)
    response.end_time.FromMicroseconds(report.end_us)
    return response


def _row_message(row: ReportRow) -> pb.ReportRow:
    return pb.ReportRow(
        group=row.group,
        calls=row.calls,
        turns=row.turns,
        average_handle_time_s=row.average_handle_time_s,
        containment_ratio=row.containment_ratio,
        intent_counts=row.intent_counts,
        latencies=[
            pb.StageLatency(stage=s.stage, count=s.count, p50_ms=s.p50_ms, p95_ms=s.p95_ms, p99_ms=s.p99_ms)
            for s in row.latencies
        ],
        cache_hit_ratio=row.cache_hit_ratio,
        barge_in_rate=row.barge_in_rate,
        error_rate=row.error_rate,
    )
