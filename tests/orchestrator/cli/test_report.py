"""voicebot analytics-report against a real analytics_svc holding a few calls."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mesh import MeshServer, dial
from tests.analytics_svc import builders
from tests.orchestrator.cli.conftest import Serve
from tests.orchestrator.cli.helpers import one_line_error, target, usage_error, voicebot
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def ingest(server: MeshServer, events: list[pb.Event]) -> None:
    async with dial(target(server)) as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        reply = await stub.Ingest(iter([pb.IngestRequest(events=events)]), timeout=30)
    assert reply.accepted_count == len(events)


async def analytics_with_calls(servers: dict[str, Serve]) -> list[str]:
    """Two calls an hour ago: loan quotes (one from the cache) and a branch question."""
    server = await servers["analytics"]()
    start = datetime.now(UTC) - timedelta(hours=1)
    at = [start + timedelta(seconds=s) for s in range(10)]
    await ingest(
        server,
        [
            builders.call_started("s1", at[0]),
            builders.turn("s1", at[1], intent="loan_quote", first_audio_ms=700),
            builders.turn("s1", at[2], index=1, intent="loan_quote", cache_hit=True, first_audio_ms=300),
            builders.call_ended("s1", at[3], turns=2),
            builders.call_started("s2", at[4]),
            builders.turn("s2", at[5], intent="branch_hours", first_audio_ms=900),
            builders.call_ended("s2", at[6], turns=1),
        ],
    )
    return ["--analytics", target(server), "analytics-report"]


async def test_table_by_intent(servers: dict[str, Serve]) -> None:
    report = await analytics_with_calls(servers)
    result = await voicebot(*report, "--group-by", "intent")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("calls from ")
    assert lines[1].split()[:3] == ["group", "calls", "turns"]
    groups = [line.split()[0] for line in lines[2:]]
    assert groups == ["branch_hours", "loan_quote", "total"]
    total = lines[-1].split()
    assert total[1:3] == ["2", "3"]


async def test_json_is_the_report_message(servers: dict[str, Serve]) -> None:
    report = await analytics_with_calls(servers)
    result = await voicebot(*report, "--group-by", "intent", "--since", "7d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["total"]["calls"] == "2"
    assert [row["group"] for row in data["rows"]] == ["branch_hours", "loan_quote"]
    stages = {s["stage"]: s for s in data["total"]["latencies"]}
    assert stages["first_audio"]["count"] == "3"


async def test_csv_has_a_header_each_group_and_the_total(servers: dict[str, Serve]) -> None:
    report = await analytics_with_calls(servers)
    result = await voicebot(*report, "--group-by", "day", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["group"] for row in rows][-1] == "total"
    assert len(rows) in (2, 3)  # the hour before now may straddle midnight UTC
    total = rows[-1]
    assert (total["calls"], total["turns"]) == ("2", "3")
    assert float(total["first_audio_p50_ms"]) > 0
    assert total["intent:loan_quote"] == "2"


async def test_chart_writes_a_png_besides_the_table(servers: dict[str, Serve], tmp_path: Path) -> None:
    report = await analytics_with_calls(servers)
    by_hour = tmp_path / "by-hour.png"
    total_only = tmp_path / "total.png"
    grouped = await voicebot(*report, "--group-by", "hour", "--chart", str(by_hour))
    ungrouped = await voicebot(*report, "--json", "--chart", str(total_only))
    assert grouped.exit_code == 0, grouped.output
    assert f"chart written to {by_hour}" in grouped.stderr
    assert by_hour.read_bytes().startswith(PNG_MAGIC)
    assert ungrouped.exit_code == 0, ungrouped.output
    assert json.loads(ungrouped.stdout)["rows"] == []
    assert total_only.read_bytes().startswith(PNG_MAGIC)


async def test_an_empty_range_reports_zeros(servers: dict[str, Serve]) -> None:
    report = await analytics_with_calls(servers)
    result = await voicebot(*report, "--since", "2025-01-01", "--until", "2025-01-02T00:00:00+00:00", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["group"], row["calls"]) for row in rows] == [("total", "0")]


async def test_bad_time_ranges() -> None:
    usage_error(await voicebot("analytics-report", "--since", "yesterday"), "Invalid value for '--since'", "24h")
    usage_error(await voicebot("analytics-report", "--since", "1h", "--until", "2h"), "must be before --until")
    usage_error(await voicebot("analytics-report", "--group-by", "week"), "Invalid value for '--group-by'")
    usage_error(await voicebot("analytics-report", "--json", "--csv"), "exclusive")


async def test_a_range_over_the_servers_limit_is_one_line(servers: dict[str, Serve]) -> None:
    report = await analytics_with_calls(servers)
    one_line_error(await voicebot(*report, "--since", "400d"), "INVALID_ARGUMENT", "366 days")


async def test_unauthenticated(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"](auth_token="secret")
    refused = await voicebot("--analytics", target(server), "analytics-report")
    allowed = await voicebot("--analytics", target(server), "--token", "secret", "analytics-report", "--json")
    one_line_error(refused, "refused the call", "--token")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["total"]["group"] == "total"
