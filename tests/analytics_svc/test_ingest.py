"""Ingest over real gRPC: storage, idempotency, batching, redaction of what is stored."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

from analytics_svc.engines.sqlite import MIGRATIONS, schema_version
from tests.analytics_svc.builders import BASE_TIME, barge_in, call_ended, call_started, error, tool, turn
from tests.analytics_svc.conftest import Analytics, AnalyticsFactory
from voicebot.v1 import analytics_service_pb2 as pb


def stored(analytics: Analytics, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(analytics.settings.db_path) as conn:
        return conn.execute(sql).fetchall()


async def test_a_call_is_stored_with_its_columns(analytics: Analytics) -> None:
    t = BASE_TIME
    response = await analytics.ingest(
        [
            call_started("s1", t, adapter="loans-v2"),
            turn("s1", t + timedelta(seconds=5), intent="loan_quote", first_audio_ms=750, cache_hit=True),
            tool("s1", t + timedelta(seconds=6)),
            barge_in("s1", t + timedelta(seconds=7)),
            error("s1", t + timedelta(seconds=8)),
            call_ended("s1", t + timedelta(seconds=60), duration_ms=60_000),
        ]
    )
    assert (response.accepted_count, response.duplicate_count) == (6, 0)
    rows = stored(
        analytics, "SELECT kind, intent, adapter, cache_hit, first_audio_ms, end_reason FROM events ORDER BY seq"
    )
    assert rows == [
        ("call_started", None, "loans-v2", None, None, None),
        ("turn_completed", "loan_quote", "", 1, 750, None),
        ("tool_called", None, None, None, None, None),
        ("barge_in", None, None, None, None, None),
        ("call_error", None, None, None, None, None),
        ("call_ended", None, None, None, None, "hangup"),
    ]


async def test_duplicates_are_dropped_and_counted_across_streams_and_within_a_batch(analytics: Analytics) -> None:
    first = [call_started("s1", event_id="a"), turn("s1", event_id="b")]
    response = await analytics.ingest(first)
    assert (response.accepted_count, response.duplicate_count) == (2, 0)
    again = [call_started("s1", event_id="a"), turn("s1", event_id="c"), turn("s1", event_id="c")]
    response = await analytics.ingest(again, [turn("s1", event_id="b")])
    assert (response.accepted_count, response.duplicate_count) == (1, 3)
    assert stored(analytics, "SELECT event_id FROM events ORDER BY seq") == [("a",), ("b",), ("c",)]


async def test_an_event_without_time_gets_the_ingest_time(analytics: Analytics) -> None:
    await analytics.ingest([call_started("s1")])
    ((time_us, ingested_us),) = stored(analytics, "SELECT time_us, ingested_us FROM events")
    assert abs(int(time_us) - int(ingested_us)) < 60_000_000


async def test_many_concurrent_streams_with_many_batches(analytics: Analytics) -> None:
    async def stream(n: int) -> pb.IngestResponse:
        batches = [[turn(f"s{n}", index=b * 50 + i) for i in range(50)] for b in range(6)]
        return await analytics.ingest(*batches)

    responses = await asyncio.gather(*(stream(n) for n in range(16)))
    assert all(r.accepted_count == 300 and r.duplicate_count == 0 for r in responses)
    assert stored(analytics, "SELECT COUNT(*) FROM events") == [(16 * 300,)]
    seqs = [row[0] for row in stored(analytics, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, 16 * 300 + 1))


async def test_the_database_is_a_wal_file_with_the_current_schema(analytics: Analytics) -> None:
    with sqlite3.connect(analytics.settings.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert schema_version(conn) == len(MIGRATIONS) == 2


async def test_in_memory_store_works(make_analytics: AnalyticsFactory) -> None:
    analytics = await make_analytics(db_path=":memory:")
    response = await analytics.ingest([call_started("s1"), turn("s1")])
    assert response.accepted_count == 2
    report = await analytics.stub.GetReport(pb.GetReportRequest())
    assert (report.total.calls, report.total.turns) == (1, 1)
