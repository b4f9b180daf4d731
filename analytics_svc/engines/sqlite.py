"""The SQLite event store: WAL mode, one writer thread, merged batches, versioned schema.

All SQLite work runs in two ``WorkerBridge``s: the writer (one thread, one connection) and the
readers (``report_workers`` threads, one connection each), so reports and session replays
never wait for writes and never block the event loop. In WAL mode readers see the last commit
while the writer goes on.

Ingest batches are queued (bounded) to one writer task, which merges whatever is waiting, up to
``write_batch_rows`` events, into one transaction: under many concurrent streams the cost of a
commit is shared by their batches. Duplicate ids are found inside the same transaction, so the
store's ``seq`` numbers of one commit are consecutive and tell watchers what they have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analytics_svc.aggregate import FRAME_COLUMNS, build_report, needed_columns
from analytics_svc.config import AnalyticsSettings
from analytics_svc.engine import (
    LATENCY_STAGES,
    CommitListener,
    EventKind,
    EventRecord,
    IngestResult,
    Report,
    ReportQuery,
    SessionState,
    StoredEvent,
)
from mesh.errors import FailedPrecondition, ResourceExhausted, Unavailable
from mesh.workers import WorkerBridge

log = logging.getLogger("analytics_svc.sqlite")

MEMORY = ":memory:"
# Rows deleted per retention transaction, so that ingest commits interleave with a large sweep.
DELETE_CHUNK_ROWS = 10_000
# Ids looked up per SELECT ... IN (...) statement (SQLite allows 32,766 parameters).
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Migration:
    """One schema step: applied once, in order, in its own transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


_LATENCY_COLUMNS = tuple(f"{stage}_ms" for stage in LATENCY_STAGES)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events with report columns; indexes by time and by session",
        (
            """
            CREATE TABLE events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id TEXT NOT NULL UNIQUE,
                session_id TEXT NOT NULL,
                time_us INTEGER NOT NULL,
                ingested_us INTEGER NOT NULL,
                kind TEXT NOT NULL,
                turn_index INTEGER,
                intent TEXT,
                adapter TEXT,
                cache_hit INTEGER,
                interrupted INTEGER,
                final_transcript_ms INTEGER,
                first_token_ms INTEGER,
                first_audio_ms INTEGER,
                cache_ms INTEGER,
                stt_compute_ms INTEGER,
                llm_compute_ms INTEGER,
                tts_compute_ms INTEGER,
                duration_ms INTEGER,
                end_reason TEXT,
                tool_name TEXT,
                ok INTEGER,
                error_service TEXT,
                error_code TEXT,
                payload BLOB NOT NULL
            )
            """,
            "CREATE INDEX events_by_time ON events (time_us)",
            "CREATE INDEX events_by_session ON events (session_id, seq)",
        ),
    ),
    Migration(
        2,
        "index by kind and time, so that a report reads each kind's rows of a range directly",
        ("CREATE INDEX events_by_kind_time ON events (kind, time_us)",),
    ),
)

_COLUMNS = (
    "event_id",
    "session_id",
    "time_us",
    "ingested_us",
    "kind",
    "turn_index",
    "intent",
    "adapter",
    "cache_hit",
    "interrupted",
    *_LATENCY_COLUMNS,
    "duration_ms",
    "end_reason",
    "tool_name",
    "ok",
    "error_service",
    "error_code",
    "payload",
)
INSERT_SQL = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608
_SELECT_SQL = f"SELECT seq, {', '.join(_COLUMNS)} FROM events"  # noqa: S608
_NO_LATENCY = (None,) * len(LATENCY_STAGES)


def record_row(record: EventRecord, ingested_us: int) -> tuple[object, ...]:
    """The ``events`` row of ``record``, in ``INSERT_SQL``'s column order."""
    latency = record.latency_ms or _NO_LATENCY
    return (
        record.event_id,
        record.session_id,
        record.time_us,
        ingested_us,
        record.kind.value,
        record.turn_index,
        record.intent,
        record.adapter,
        record.cache_hit,
        record.interrupted,
        *latency,
        record.duration_ms,
        record.end_reason,
        record.tool_name,
        record.ok,
        record.error_service,
        record.error_code,
        record.payload,
    )


def _row_record(row: tuple[Any, ...]) -> StoredEvent:
    seq, event_id, session_id, time_us, _ingested, kind, turn_index, intent, adapter, cache_hit, interrupted = row[:11]
    latency = row[11 : 11 + len(LATENCY_STAGES)]
    duration_ms, end_reason, tool_name, ok, error_service, error_code, payload = row[11 + len(LATENCY_STAGES) :]
    record = EventRecord(
        event_id=str(event_id),
        session_id=str(session_id),
        time_us=int(time_us),
        kind=EventKind(kind),
        payload=bytes(payload),
        turn_index=turn_index,
        intent=intent,
        adapter=adapter,
        cache_hit=None if cache_hit is None else bool(cache_hit),
        interrupted=None if interrupted is None else bool(interrupted),
        latency_ms=() if latency[0] is None else tuple(int(v or 0) for v in latency),
        duration_ms=duration_ms,
        end_reason=end_reason,
        tool_name=tool_name,
        ok=None if ok is None else bool(ok),
        error_service=error_service,
        error_code=error_code,
    )
    return StoredEvent(int(seq), record)


def connect(path: str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit), WAL for files.

    Raises:
        Unavailable: the file cannot be opened or is not a SQLite database.
    """
    try:
        if path != MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if path != MEMORY:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        return conn
    except (sqlite3.Error, OSError) as exc:
        raise Unavailable(f"cannot open analytics database {path}: {exc}") from None


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to ``conn``'s database, 0 for a new one."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if exists is None:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the migrations the database lacks, each in one transaction; return the version reached.

    Raises:
        FailedPrecondition: the database was written by a newer analytics_svc.
        ValueError: ``migrations`` are not numbered 1, 2, 3, ... in order.
    """
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3, ... in order")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    current = schema_version(conn)
    if current > len(migrations):
        raise FailedPrecondition(
            f"analytics database schema is version {current}, newer than this analytics_svc knows "
            f"({len(migrations)}); upgrade analytics_svc"
        )
    for migration in migrations[current:]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("schema migrated", extra={"version": migration.version, "description": migration.description})
    return len(migrations)


@dataclass
class _Pending:
    records: Sequence[EventRecord]
    future: asyncio.Future[IngestResult]


class SqliteStore:
    """``EventStore`` on a SQLite file (or ``:memory:``); see the module docstring."""

    def __init__(self, settings: AnalyticsSettings, on_commit: CommitListener | None = None) -> None:
        """Prepare the store; nothing opens until ``open``."""
        self.settings = settings
        self.path = settings.db_path
        self._on_commit = on_commit
        self._writer_bridge = WorkerBridge("analytics-sqlite-writer", 1, 8)
        self._reader_bridge = (
            self._writer_bridge
            if self.path == MEMORY
            else WorkerBridge("analytics-sqlite-reader", settings.report_workers, settings.report_workers * 8)
        )
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._writer_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the writer connection, migrate the schema and start the writer task."""
        self._writer = await self._writer_bridge.run(connect, self.path, self.settings.db_synchronous)
        await self._writer_bridge.run(migrate, self._writer)
        self._queue = asyncio.Queue(self.settings.max_pending_batches)
        self._writer_task = asyncio.create_task(self._write_loop(), name="analytics-sqlite-writer")

    async def close(self) -> None:
        """Write what is queued, stop the writer and close every connection."""
        if self._writer_task is not None and self._queue is not None:
            await self._queue.put(None)
            await self._writer_task
            self._writer_task = None
        if self._writer is not None:
            writer = self._writer
            self._writer = None
            await self._writer_bridge.run(self._close_writer, writer)
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._writer_bridge.close()
        if self._reader_bridge is not self._writer_bridge:
            self._reader_bridge.close()

    @staticmethod
    def _close_writer(conn: sqlite3.Connection) -> None:
        # Move the WAL into the main file so that the database is one file at rest.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    async def ingest(self, records: Sequence[EventRecord]) -> IngestResult:
        """Queue ``records`` for the writer and wait until they are committed."""
        if self._queue is None:
            raise Unavailable("analytics store is not open")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(records, future))
        except asyncio.QueueFull:
            raise ResourceExhausted(
                f"analytics writer is behind: {self.settings.max_pending_batches} batches waiting "
                "(max_pending_batches); retry shortly"
            ) from None
        return await future

    async def _write_loop(self) -> None:
        assert self._queue is not None
        limit = self.settings.write_batch_rows
        closing = False
        while not closing:
            item = await self._queue.get()
            if item is None:
                break
            group = [item]
            rows = len(item.records)
            while not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    closing = True
                    break
                if rows + len(nxt.records) > limit:
                    await self._commit(group)
                    group, rows = [], 0
                group.append(nxt)
                rows += len(nxt.records)
            if group:
                await self._commit(group)

    async def _commit(self, group: list[_Pending]) -> None:
        try:
            results, stored = await self._writer_bridge.run(self._write, [p.records for p in group])
        except Exception as exc:
            log.error("write failed: %s", exc)
            failure = exc if isinstance(exc, ResourceExhausted | Unavailable) else Unavailable(f"write failed: {exc}")
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(failure)
            return
        if self._on_commit is not None:
            try:
                self._on_commit(stored, sum(result.duplicates for result in results))
            except Exception:
                log.exception("commit listener failed")
        for pending, result in zip(group, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    def _write(self, batches: list[Sequence[EventRecord]]) -> tuple[list[IngestResult], list[StoredEvent]]:
        conn = self._writer
        if conn is None:
            raise Unavailable("analytics store is closed")
        ingested_us = time.time_ns() // 1000
        conn.execute("BEGIN IMMEDIATE")
        try:
            seen = _existing_ids(conn, {r.event_id for batch in batches for r in batch})
            fresh: list[EventRecord] = []
            results: list[IngestResult] = []
            for batch in batches:
                accepted = 0
                for record in batch:
                    if record.event_id in seen:
                        continue
                    seen.add(record.event_id)
                    fresh.append(record)
                    accepted += 1
                results.append(IngestResult(accepted, len(batch) - accepted))
            first_seq = _last_seq(conn) + 1
            conn.executemany(INSERT_SQL, [record_row(r, ingested_us) for r in fresh])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # One writer, AUTOINCREMENT and no failed inserts: the rows got consecutive seq numbers.
        return results, [StoredEvent(first_seq + i, r) for i, r in enumerate(fresh)]

    def _reader(self) -> sqlite3.Connection:
        if self.path == MEMORY:
            if self._writer is None:
                raise Unavailable("analytics store is closed")
            return self._writer
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.settings.db_synchronous)
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    async def report(self, query: ReportQuery) -> Report:
        """Aggregate the range with pandas in a reader thread."""
        return await self._reader_bridge.run(self._report, query)

    def _report(self, query: ReportQuery) -> Report:
        conn = self._reader()
        count = conn.execute(
            "SELECT COUNT(*) FROM events WHERE time_us >= ? AND time_us < ?", (query.start_us, query.end_us)
        ).fetchone()[0]
        if count > self.settings.max_report_events:
            raise ResourceExhausted(
                f"the range holds {count} events, more than one report aggregates "
                f"({self.settings.max_report_events}, max_report_events); ask for a shorter range"
            )
        return build_report(fetch_report_events(conn, query), query)

    async def session_events(self, session_id: str, after_seq: int, limit: int) -> list[StoredEvent]:
        """A page of a session's stored events, read in a reader thread."""
        return await self._reader_bridge.run(self._session_events, session_id, after_seq, limit)

    def _session_events(self, session_id: str, after_seq: int, limit: int) -> list[StoredEvent]:
        sql = f"{_SELECT_SQL} WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        rows = self._reader().execute(sql, (session_id, after_seq, limit)).fetchall()
        return [_row_record(row) for row in rows]

    async def session_state(self, session_id: str) -> SessionState:
        """The session's last seq and whether it ended, read in a reader thread."""
        return await self._reader_bridge.run(self._session_state, session_id)

    def _session_state(self, session_id: str) -> SessionState:
        conn = self._reader()
        last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?", (session_id,)).fetchone()
        ended = conn.execute(
            "SELECT 1 FROM events WHERE session_id = ? AND kind = 'call_ended' LIMIT 1", (session_id,)
        ).fetchone()
        return SessionState(int(last[0]), ended is not None)

    async def delete_older_than(self, time_us: int) -> int:
        """Delete in chunks of ``DELETE_CHUNK_ROWS``, one writer transaction each."""
        total = 0
        while True:
            deleted = await self._writer_bridge.run(self._delete_chunk, time_us)
            total += deleted
            if deleted < DELETE_CHUNK_ROWS:
                return total

    def _delete_chunk(self, time_us: int) -> int:
        conn = self._writer
        if conn is None:
            raise Unavailable("analytics store is closed")
        cursor = conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE time_us < ? LIMIT ?)",
            (time_us, DELETE_CHUNK_ROWS),
        )
        return int(cursor.rowcount)


def fetch_report_events(conn: sqlite3.Connection, query: ReportQuery) -> pd.DataFrame:
    """The rows of the query's range that its report needs: one indexed query per kind."""
    frames = []
    for kind, columns in needed_columns(query.grouping).items():
        sql = f"SELECT {', '.join(columns)} FROM events WHERE kind = ? AND time_us >= ? AND time_us < ?"  # noqa: S608
        rows = conn.execute(sql, (kind, query.start_us, query.end_us)).fetchall()
        if rows:
            frames.append(pd.DataFrame.from_records(rows, columns=list(columns)).assign(kind=kind))
    if not frames:
        return pd.DataFrame(columns=list(FRAME_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _existing_ids(conn: sqlite3.Connection, ids: set[str]) -> set[str]:
    found: set[str] = set()
    pending = list(ids)
    for start in range(0, len(pending), _LOOKUP_CHUNK):
        chunk = pending[start : start + _LOOKUP_CHUNK]
        placeholders = ", ".join("?" * len(chunk))
        sql = f"SELECT event_id FROM events WHERE event_id IN ({placeholders})"  # noqa: S608
        found.update(row[0] for row in conn.execute(sql, chunk))
    return found


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return 0 if row is None else int(row[0])
