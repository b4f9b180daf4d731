"""Prometheus metrics derived from call events, updated as events are stored.

They describe the calls, not the RPC layer (``mesh.metrics`` does that): turn latency by stage,
calls started, ended and active, cache hits, barge-ins, transfers, errors and tool calls. Only
events stored for the first time count; duplicates are counted apart. The Grafana dashboard in
``deploy/grafana/`` reads these names.

Label values that come from callers are bounded, so that a misbehaving client cannot create
unbounded series: services, gRPC codes and end reasons outside their known sets read as
"other", and so do intents and tool names that are not short identifiers or come after the
first ``MAX_LABEL_VALUES`` distinct ones.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram

from analytics_svc.engine import LATENCY_STAGES, EventKind, StoredEvent

MAX_LABEL_VALUES = 64
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_SERVICES = frozenset({"stt", "tts", "llm", "cache", "analytics", "orchestrator"})
_CODES = frozenset(code.name for code in grpc.StatusCode)
_END_REASONS = frozenset({"unspecified", "hangup", "transfer", "error", "timeout", "admin"})

TURN_LATENCY = Histogram(
    "voicebot_turn_latency_seconds",
    "Turn latency by stage, from the end of the caller's speech (compute stages: the engine's own time), in seconds.",
    ["stage"],
    buckets=(0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
CALLS_STARTED = Counter("voicebot_calls_started", "Calls started.")
CALLS_ENDED = Counter("voicebot_calls_ended", "Calls ended, by reason.", ["reason"])
CALLS_ACTIVE = Gauge("voicebot_calls_active", "Calls started and not yet ended, as seen by analytics.")
CALL_DURATION = Histogram(
    "voicebot_call_duration_seconds",
    "Handle time of ended calls, in seconds.",
    buckets=(10, 30, 60, 120, 180, 300, 600, 900, 1800, 3600),
)
TURNS = Counter("voicebot_turns", "Turns completed, by intent.", ["intent"])
CACHE_HITS = Counter("voicebot_cache_hits", "Turns answered from the semantic cache.")
CACHE_MISSES = Counter("voicebot_cache_misses", "Turns not answered from the semantic cache.")
BARGE_INS = Counter("voicebot_barge_ins", "Times a caller interrupted the bot.")
AGENT_TRANSFERS = Counter("voicebot_agent_transfers", "Calls handed to a human agent.")
CALL_ERRORS = Counter(
    "voicebot_call_errors", "Failures during calls, by failing service and gRPC code.", ["service", "code", "recovered"]
)
TOOL_CALLS = Counter("voicebot_tool_calls", "Banking tools run, by tool and outcome.", ["tool", "ok"])
EVENTS = Counter("voicebot_analytics_events", "Events stored, by kind.", ["kind"])
DUPLICATES = Counter("voicebot_analytics_duplicate_events", "Events dropped because their id was stored already.")
WATCHERS = Gauge("voicebot_analytics_watchers", "WatchSession streams open.")
WATCHERS_DROPPED = Counter(
    "voicebot_analytics_watchers_dropped", "WatchSession streams ended with RESOURCE_EXHAUSTED for falling behind."
)
RETENTION_DELETED = Counter("voicebot_analytics_retention_deleted_events", "Events deleted by retention sweeps.")

# Series that dashboards plot exist from the start, at zero.
for _stage in LATENCY_STAGES:
    TURN_LATENCY.labels(_stage)
for _kind in EventKind:
    EVENTS.labels(_kind.value)


class LabelCap:
    """Bounds the values of one caller-supplied label; see the module docstring."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        """Allow at most ``limit`` distinct values."""
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str, empty: str = "unknown") -> str:
        """The label value to use for ``value``."""
        if not value:
            return empty
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit or not _LABEL_VALUE.fullmatch(value):
            return "other"
        self._seen.add(value)
        return value


class ActiveCalls:
    """Calls started and not ended, bounded; keeps ``voicebot_calls_active`` up to date.

    Several trackers (several servers in one test process) add up in the gauge.
    """

    def __init__(self, limit: int) -> None:
        """Track at most ``limit`` calls; beyond it the oldest are forgotten."""
        self.limit = limit
        self._calls: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._calls)

    def started(self, session_id: str) -> None:
        """Count a call as active."""
        if session_id in self._calls:
            return
        self._calls[session_id] = None
        CALLS_ACTIVE.inc()
        if len(self._calls) > self.limit:
            self._calls.popitem(last=False)
            CALLS_ACTIVE.dec()

    def ended(self, session_id: str) -> None:
        """Count a call as no longer active."""
        if session_id in self._calls:
            del self._calls[session_id]
            CALLS_ACTIVE.dec()

    def clear(self) -> None:
        """Forget every call (the server stops)."""
        CALLS_ACTIVE.dec(len(self._calls))
        self._calls.clear()


class EventMetrics:
    """Updates the metrics above from stored events."""

    def __init__(self, active_calls: ActiveCalls) -> None:
        """Count active calls with ``active_calls``."""
        self.active_calls = active_calls
        self._intents = LabelCap()
        self._tools = LabelCap()
        # Children looked up once: a labels() call costs more than the increment itself.
        self._events = {kind: EVENTS.labels(kind.value) for kind in EventKind}
        self._latency = [TURN_LATENCY.labels(stage) for stage in LATENCY_STAGES]
        self._turns: dict[str, Any] = {}

    def observe(self, events: Sequence[StoredEvent], duplicates: int = 0) -> None:
        """Account for newly stored events and for dropped duplicates."""
        if duplicates:
            DUPLICATES.inc(duplicates)
        for stored in events:
            record = stored.record
            kind = record.kind
            self._events[kind].inc()
            if kind is EventKind.TURN_COMPLETED:
                intent = record.intent or ""
                turns = self._turns.get(intent)
                if turns is None:
                    turns = TURNS.labels(self._intents(intent))
                    if len(self._turns) < 4 * MAX_LABEL_VALUES:
                        self._turns[intent] = turns
                turns.inc()
                (CACHE_HITS if record.cache_hit else CACHE_MISSES).inc()
                for child, ms in zip(self._latency, record.latency_ms, strict=False):
                    if ms > 0:
                        child.observe(ms / 1000.0)
            elif kind is EventKind.CALL_STARTED:
                CALLS_STARTED.inc()
                self.active_calls.started(record.session_id)
            elif kind is EventKind.CALL_ENDED:
                reason = record.end_reason or "unspecified"
                CALLS_ENDED.labels(reason if reason in _END_REASONS else "other").inc()
                if record.duration_ms:
                    CALL_DURATION.observe(record.duration_ms / 1000.0)
                self.active_calls.ended(record.session_id)
            elif kind is EventKind.BARGE_IN:
                BARGE_INS.inc()
            elif kind is EventKind.AGENT_TRANSFER:
                AGENT_TRANSFERS.inc()
            elif kind is EventKind.CALL_ERROR:
                service = record.error_service or "unknown"
                code = record.error_code or "UNKNOWN"
                CALL_ERRORS.labels(
                    service if service in _SERVICES else "other",
                    code if code in _CODES else "other",
                    "true" if record.ok else "false",
                ).inc()
            elif kind is EventKind.TOOL_CALLED:
                TOOL_CALLS.labels(self._tools(record.tool_name or ""), "true" if record.ok else "false").inc()
