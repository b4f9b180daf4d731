"""GetReportResponse as flat rows, for tables, JSON and CSV (the CLI renders reports with this).

Pure Python on the generated message: no pandas, no gRPC. Every row has the same keys in the
same order: the group and its scalar figures, then ``<stage>_count`` and
``<stage>_p50_ms``/``_p95_ms``/``_p99_ms`` for every stage any row has, then ``intent:<name>``
for every intent any row has (0 where a row has none).
"""

from __future__ import annotations

from voicebot.v1 import analytics_service_pb2 as pb

Cell = str | int | float
SCALAR_COLUMNS: tuple[str, ...] = (
    "group",
    "calls",
    "turns",
    "average_handle_time_s",
    "containment_ratio",
    "cache_hit_ratio",
    "barge_in_rate",
    "error_rate",
)


def report_rows(response: pb.GetReportResponse, *, include_total: bool = True) -> list[dict[str, Cell]]:
    """One dict per group row, in the response's order, then the total row (unless excluded)."""
    rows = [*response.rows, response.total] if include_total else list(response.rows)
    stages: list[str] = []
    intents: set[str] = set()
    for row in rows:
        for latency in row.latencies:
            if latency.stage not in stages:
                stages.append(latency.stage)
        intents.update(row.intent_counts)
    flat = []
    for row in rows:
        cells: dict[str, Cell] = {name: getattr(row, name) for name in SCALAR_COLUMNS}
        by_stage = {latency.stage: latency for latency in row.latencies}
        for stage in stages:
            latency = by_stage.get(stage, pb.StageLatency(stage=stage))
            cells[f"{stage}_count"] = latency.count
            cells[f"{stage}_p50_ms"] = latency.p50_ms
            cells[f"{stage}_p95_ms"] = latency.p95_ms
            cells[f"{stage}_p99_ms"] = latency.p99_ms
        for intent in sorted(intents):
            cells[f"intent:{intent}"] = row.intent_counts.get(intent, 0)
        flat.append(cells)
    return flat


def report_columns(rows: list[dict[str, Cell]]) -> list[str]:
    """The column names of ``report_rows``' output (the scalar columns when there are no rows)."""
    return list(rows[0]) if rows else list(SCALAR_COLUMNS)
