"""The event store's contract and the domain types it speaks.

An event arrives already validated and redacted as an ``EventRecord``: the columns that reports
and metrics need, plus ``payload``, the redacted ``voicebot.v1.Event`` as bytes, which watchers
get back unchanged. The store keeps records idempotently by ``event_id`` and tells a listener,
in commit order, about every record it stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class EventKind(StrEnum):
    """What an event reports; the values are the names of ``Event.detail``'s fields."""

    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    TURN_COMPLETED = "turn_completed"
    TOOL_CALLED = "tool_called"
    BARGE_IN = "barge_in"
    AGENT_TRANSFER = "agent_transfer"
    CALL_ERROR = "call_error"


class Grouping(StrEnum):
    """Rows of a report besides the total."""

    NONE = "none"
    HOUR = "hour"
    DAY = "day"
    INTENT = "intent"
    ADAPTER = "adapter"


# Turn latency stages stored per turn, in the order of ``TurnLatency``'s fields. The first four
# are reported by GetReport (the ones its contract names); all seven feed the Prometheus histogram.
LATENCY_STAGES: tuple[str, ...] = (
    "final_transcript",
    "first_token",
    "first_audio",
    "cache",
    "stt_compute",
    "llm_compute",
    "tts_compute",
)
REPORT_STAGES: tuple[str, ...] = LATENCY_STAGES[:4]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One redacted event, ready to store.

    Attributes:
        event_id: Idempotency key, 1-128 characters.
        session_id: Session, 1-128 characters.
        time_us: Event time, microseconds since the Unix epoch (UTC).
        kind: What happened.
        payload: The redacted ``voicebot.v1.Event``, serialized, with its time filled in.
        turn_index: Turn of a turn, barge-in, tool call or transfer; None for other kinds.
        intent: Turn intent ("" when unknown); None for other kinds.
        adapter: LoRA adapter of a turn or call ("" for the base model); None for other kinds.
        cache_hit: Turn answered from the cache.
        interrupted: Turn interrupted by the caller.
        latency_ms: Turn latencies by ``LATENCY_STAGES`` order, 0 when not reached; empty for other kinds.
        duration_ms: Handle time of an ended call, or run time of a tool call.
        end_reason: ``CallEndReason`` name without prefix, lower case ("hangup", "transfer", ...).
        tool_name: Tool that ran.
        ok: Tool call succeeded, or an error was recovered from.
        error_service: Service an error came from.
        error_code: gRPC status code name of an error.
    """

    event_id: str
    session_id: str
    time_us: int
    kind: EventKind
    payload: bytes
    turn_index: int | None = None
    intent: str | None = None
    adapter: str | None = None
    cache_hit: bool | None = None
    interrupted: bool | None = None
    latency_ms: tuple[int, ...] = ()
    duration_ms: int | None = None
    end_reason: str | None = None
    tool_name: str | None = None
    ok: bool | None = None
    error_service: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A record as stored, with its place in the store's commit order (``seq`` grows)."""

    seq: int
    record: EventRecord


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one batch: stored, or dropped as a duplicate id."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class SessionState:
    """Where a session stands in the store."""

    last_seq: int
    ended: bool


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """Events with ``start_us <= time_us < end_us``, grouped by ``grouping``."""

    start_us: int
    end_us: int
    grouping: Grouping = Grouping.NONE


@dataclass(frozen=True, slots=True)
class StageLatency:
    """Latency percentiles of one stage over ``count`` turns, in milliseconds."""

    stage: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class ReportRow:
    """Aggregates of one group; ratios are 0.0 when their denominator is 0."""

    group: str
    calls: int = 0
    turns: int = 0
    average_handle_time_s: float = 0.0
    containment_ratio: float = 0.0
    intent_counts: dict[str, int] = field(default_factory=dict)
    latencies: tuple[StageLatency, ...] = ()
    cache_hit_ratio: float = 0.0
    barge_in_rate: float = 0.0
    error_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class Report:
    """A report: the total row and one row per group, ordered by group key."""

    total: ReportRow
    rows: tuple[ReportRow, ...]
    start_us: int
    end_us: int


CommitListener = Callable[[Sequence[StoredEvent], int], None]
"""Called on the event loop, in commit order, with the records each commit stored and the number
of duplicates it dropped."""


class EventStore(Protocol):
    """Where events live. Every method may raise ``mesh.errors.MeshError`` subclasses."""

    async def open(self) -> None:
        """Open the store and bring its schema up to date."""
        ...

    async def close(self) -> None:
        """Finish queued writes and release the store."""
        ...

    async def ingest(self, records: Sequence[EventRecord]) -> IngestResult:
        """Store ``records``, dropping ids stored already (also repeated ids within the batch).

        Raises:
            ResourceExhausted: too many batches are waiting for the writer.
        """
        ...

    async def report(self, query: ReportQuery) -> Report:
        """Aggregate the events of ``query``'s range.

        Raises:
            ResourceExhausted: the range holds more events than one report may aggregate.
        """
        ...

    async def session_events(self, session_id: str, after_seq: int, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` stored events of a session with ``seq > after_seq``, in commit order."""
        ...

    async def session_state(self, session_id: str) -> SessionState:
        """The session's last stored ``seq`` (0 when none) and whether its call ended."""
        ...

    async def delete_older_than(self, time_us: int) -> int:
        """Delete events whose time is before ``time_us``; return how many."""
        ...
