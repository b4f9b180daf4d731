"""GetReport over real gRPC, on a small data set whose figures are worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from analytics_svc.report import report_columns, report_rows
from tests.analytics_svc.builders import BASE_TIME, barge_in, call_ended, call_started, error, tool, transfer, turn
from tests.analytics_svc.conftest import Analytics
from voicebot.v1 import analytics_service_pb2 as pb

H13 = BASE_TIME  # 2026-11-24T13:00Z
H14 = BASE_TIME + timedelta(hours=1)


def stamp(when: object) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when)  # type: ignore[arg-type]
    return ts


@pytest.fixture
async def calls(analytics: Analytics) -> Analytics:
    """Three calls: A (13:00, two turns, adapter "loans"), B (14:00, transferred), C (14:00, no turns)."""
    s = timedelta(seconds=1)
    await analytics.ingest(
        [
            call_started("A", H13, adapter="loans"),
            turn("A", H13 + 5 * s, index=0, intent="loan_quote", adapter="loans", cache_hit=True, first_audio_ms=800),
            turn("A", H13 + 9 * s, index=1, intent="balance", adapter="loans", first_audio_ms=1000, cache_ms=15),
            barge_in("A", H13 + 10 * s, index=1),
            tool("A", H13 + 11 * s),
            call_ended("A", H13 + 60 * s, duration_ms=60_000),
        ],
        [
            call_started("B", H14),
            turn("B", H14 + 5 * s, index=0, intent="loan_quote", first_audio_ms=600),
            error("B", H14 + 6 * s),
            transfer("B", H14 + 7 * s),
            call_ended("B", H14 + 120 * s, duration_ms=120_000, reason=pb.CALL_END_REASON_TRANSFER),
            call_started("C", H14 + 2 * s),
            call_ended("C", H14 + 32 * s, duration_ms=30_000),
        ],
    )
    return analytics


async def report(analytics: Analytics, group_by: int = 0, hours: int = 24) -> pb.GetReportResponse:
    request = pb.GetReportRequest(
        start_time=stamp(H13), end_time=stamp(H13 + timedelta(hours=hours)), group_by=group_by
    )
    return await analytics.stub.GetReport(request)


def latency(row: pb.ReportRow, stage: str) -> pb.StageLatency:
    return next(s for s in row.latencies if s.stage == stage)


async def test_total_row(calls: Analytics) -> None:
    response = await report(calls)
    total = response.total
    assert total.group == "total"
    assert (total.calls, total.turns) == (3, 3)
    assert total.average_handle_time_s == pytest.approx(70.0)
    assert total.containment_ratio == pytest.approx(2 / 3)
    assert dict(total.intent_counts) == {"loan_quote": 2, "balance": 1}
    assert total.cache_hit_ratio == pytest.approx(1 / 3)
    assert total.barge_in_rate == pytest.approx(1 / 3)
    assert total.error_rate == pytest.approx(1 / 3)
    voice_to_voice = latency(total, "first_audio")
    # Linear interpolation over 600, 800, 1000 ms.
    assert (voice_to_voice.count, voice_to_voice.p50_ms) == (3, 800.0)
    assert voice_to_voice.p95_ms == pytest.approx(980.0)
    assert voice_to_voice.p99_ms == pytest.approx(996.0)
    assert [s.stage for s in total.latencies] == ["final_transcript", "first_token", "first_audio", "cache"]
    assert latency(total, "cache").count == 1  # 0 means the cache was not asked
    assert list(response.rows) == []
    assert response.start_time == stamp(H13)


async def test_group_by_hour(calls: Analytics) -> None:
    rows = {row.group: row for row in (await report(calls, pb.REPORT_GROUPING_HOUR)).rows}
    assert list(rows) == ["2026-11-24T13:00Z", "2026-11-24T14:00Z"]
    first, second = rows.values()
    assert (first.calls, first.turns, first.average_handle_time_s, first.containment_ratio) == (1, 2, 60.0, 1.0)
    assert (first.cache_hit_ratio, first.barge_in_rate, first.error_rate) == (0.5, 0.5, 0.0)
    assert (second.calls, second.turns, second.average_handle_time_s, second.containment_ratio) == (2, 1, 75.0, 0.5)
    assert (second.cache_hit_ratio, second.barge_in_rate, second.error_rate) == (0.0, 0.0, 1.0)


async def test_group_by_day(calls: Analytics) -> None:
    response = await report(calls, pb.REPORT_GROUPING_DAY)
    assert [row.group for row in response.rows] == ["2026-11-24"]
    day = response.rows[0]
    day.group = "total"
    assert day == response.total


async def test_group_by_intent(calls: Analytics) -> None:
    rows = {row.group: row for row in (await report(calls, pb.REPORT_GROUPING_INTENT)).rows}
    assert list(rows) == ["balance", "loan_quote", "unknown"]
    balance, loan, unknown = rows.values()
    assert (balance.calls, balance.turns, balance.barge_in_rate, balance.error_rate) == (1, 1, 1.0, 0.0)
    assert (loan.calls, loan.turns, loan.average_handle_time_s, loan.containment_ratio) == (2, 2, 90.0, 0.5)
    assert (loan.cache_hit_ratio, loan.barge_in_rate, loan.error_rate) == (0.5, 0.0, 0.5)
    assert dict(loan.intent_counts) == {"loan_quote": 2}
    assert (unknown.calls, unknown.turns, unknown.average_handle_time_s, unknown.containment_ratio) == (1, 0, 30.0, 1.0)


async def test_group_by_adapter(calls: Analytics) -> None:
    rows = {row.group: row for row in (await report(calls, pb.REPORT_GROUPING_ADAPTER)).rows}
    assert list(rows) == ["base", "loans"]
    base, loans = rows.values()
    assert (base.calls, base.turns, base.average_handle_time_s, base.containment_ratio) == (2, 1, 75.0, 0.5)
    assert base.error_rate == 1.0
    assert (loans.calls, loans.turns, loans.barge_in_rate, loans.cache_hit_ratio) == (1, 2, 0.5, 0.5)


async def test_the_range_limits_the_events(calls: Analytics) -> None:
    response = await report(calls, hours=1)
    assert (response.total.calls, response.total.turns) == (1, 2)


async def test_an_empty_range_reports_zeros(analytics: Analytics) -> None:
    response = await analytics.stub.GetReport(pb.GetReportRequest(group_by=pb.REPORT_GROUPING_HOUR))
    assert response.total == pb.ReportRow(group="total")
    assert list(response.rows) == []
    assert response.end_time.ToMicroseconds() - response.start_time.ToMicroseconds() == 24 * 3600 * 1_000_000


async def test_report_rows_flatten_for_tables_and_csv(calls: Analytics) -> None:
    response = await report(calls, pb.REPORT_GROUPING_INTENT)
    rows = report_rows(response)
    assert [row["group"] for row in rows] == ["balance", "loan_quote", "unknown", "total"]
    columns = report_columns(rows)
    assert all(list(row) == columns for row in rows)
    assert columns[:3] == ["group", "calls", "turns"]
    assert {"first_audio_p95_ms", "intent:loan_quote"} <= set(columns)
    total = rows[-1]
    assert (total["first_audio_p50_ms"], total["intent:balance"]) == (800.0, 1)
    assert rows[2]["first_audio_count"] == 0
    assert report_rows(response, include_total=False)[-1]["group"] == "unknown"
