"""``voicebot analytics-report``: call metrics of a time range as a table, JSON, CSV or a chart."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import grpc

from analytics_svc.report import report_columns, report_rows
from orchestrator.cli.client import call
from orchestrator.cli.options import ClientConfig, pass_config
from orchestrator.cli.output import echo_json, json_option, table, wants_json
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

GROUPINGS = {
    "none": pb.REPORT_GROUPING_UNSPECIFIED,
    "hour": pb.REPORT_GROUPING_HOUR,
    "day": pb.REPORT_GROUPING_DAY,
    "intent": pb.REPORT_GROUPING_INTENT,
    "adapter": pb.REPORT_GROUPING_ADAPTER,
}
# Voice-to-voice latency: end of the caller's speech to the first bot audio.
V2V = "first_audio"
# A week of hourly rows stays readable: the figure stops widening and labels thin out.
MAX_CHART_WIDTH_IN = 24.0
MAX_CHART_LABELS = 40
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TimePoint(click.ParamType[datetime]):
    """A moment: a duration before now (``90m``, ``24h``, ``7d``, ``2w``) or an ISO 8601 date or time (UTC if naive)."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """Parse ``value`` into an aware UTC datetime."""
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        match = _DURATION.fullmatch(text)
        if match:
            ago = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
            return datetime.now(UTC) - ago
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{text!r} is neither a duration like 24h or 7d nor an ISO 8601 time like 2026-01-31T08:00", param
            )
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def latency(row: pb.ReportRow, stage: str) -> pb.StageLatency | None:
    """The percentiles of ``stage`` in ``row``, if it was measured."""
    return next((s for s in row.latencies if s.stage == stage), None)


def all_rows(report: pb.GetReportResponse) -> list[pb.ReportRow]:
    """The group rows, then the total row."""
    return [*report.rows, report.total]


def to_csv(report: pb.GetReportResponse) -> str:
    """The report as CSV: a header, one line per group, the total last (columns of ``report_rows``)."""
    rows = report_rows(report)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=report_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ms(found: pb.StageLatency | None, p: str) -> str:
    return f"{getattr(found, f'{p}_ms'):.0f}" if found and found.count else "-"


def to_table(report: pb.GetReportResponse) -> str:
    """The report as a text table with its range above."""
    headers = (
        *("group", "calls", "turns", "AHT s", "contained", "cache hit", "barge-in", "errors/turn"),
        *("v2v p50 ms", "v2v p95 ms", "v2v p99 ms"),
    )
    rows: list[Sequence[object]] = []
    for row in all_rows(report):
        v2v = latency(row, V2V)
        rows.append(
            (
                row.group,
                row.calls,
                row.turns,
                f"{row.average_handle_time_s:.1f}",
                _percent(row.containment_ratio),
                _percent(row.cache_hit_ratio),
                _percent(row.barge_in_rate),
                f"{row.error_rate:.3f}",
                _ms(v2v, "p50"),
                _ms(v2v, "p95"),
                _ms(v2v, "p99"),
            )
        )
    start = report.start_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
    end = report.end_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
    return f"calls from {start} to {end} UTC\n" + table(headers, rows, right=frozenset(range(1, len(headers))))


def write_chart(report: pb.GetReportResponse, path: Path) -> None:
    """Voice-to-voice p50/p95/p99 and call volume per group, as a PNG (matplotlib, Agg backend).

    Raises:
        click.ClickException: matplotlib is missing or the file cannot be written.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise click.ClickException("--chart needs matplotlib: pip install 'voicebot-mesh[cli]'") from None
    rows = list(report.rows) or [report.total]
    groups = [row.group for row in rows]
    positions = list(range(len(rows)))
    width_in = min(MAX_CHART_WIDTH_IN, max(6.0, 0.6 * len(rows) + 3))
    figure = Figure(figsize=(width_in, 6.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    width = 0.27
    for offset, p in zip((-width, 0.0, width), ("p50", "p95", "p99"), strict=True):
        values = []
        for row in rows:
            found = latency(row, V2V)
            values.append(getattr(found, f"{p}_ms") if found else 0.0)
        top.bar([x + offset for x in positions], values, width, label=p)
    top.set_ylabel("voice-to-voice latency, ms")
    top.margins(y=0.2)  # room above the bars for the legend
    top.legend(title="percentile", loc="upper left", ncols=3)
    top.grid(axis="y", alpha=0.3)
    start = report.start_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
    end = report.end_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
    top.set_title(f"voicebot calls, {start} to {end} UTC")
    bottom.bar(positions, [row.calls for row in rows], 0.6, color="tab:gray")
    bottom.set_ylabel("calls")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    step = max(1, len(rows) // MAX_CHART_LABELS + (len(rows) % MAX_CHART_LABELS > 0))
    slanted = len(rows) > 6
    bottom.set_xticks(
        positions[::step], groups[::step], rotation=45 if slanted else 0, ha="right" if slanted else "center"
    )
    bottom.grid(axis="y", alpha=0.3)
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise click.ClickException(f"cannot write the chart to {path}: {exc.strerror or exc}") from None


@click.command("analytics-report")
@click.option(
    "--since", type=TimePoint(), default="24h", show_default=True, help="Start: a duration ago (24h, 7d) or ISO time."
)
@click.option("--until", type=TimePoint(), default="0s", help="End: a duration ago or ISO time (default: now).")
@click.option(
    "--group-by",
    type=click.Choice(list(GROUPINGS)),
    default="none",
    show_default=True,
    help="One row per hour, day (UTC), intent or adapter; none gives the total only.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: one line per group, the total last.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write a PNG: voice-to-voice p50/p95/p99 and call volume per group.",
)
@json_option
@pass_config
def analytics_report(
    config: ClientConfig,
    since: datetime,
    until: datetime,
    group_by: str,
    as_csv: bool,
    chart: Path | None,
    as_json: bool,
) -> None:
    """Calls, turns, containment, cache hits and latency percentiles of a time range.

    The range is [--since, --until) and may span at most 366 days. Prints a table; --json prints
    the GetReport response, --csv one line per group (total last); --chart also writes a PNG.
    """
    as_json = wants_json(config, as_json)
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive: pick one output format")
    if until <= since:
        raise click.BadParameter(
            f"--since ({since:%Y-%m-%dT%H:%M:%SZ}) must be before --until ({until:%Y-%m-%dT%H:%M:%SZ})",
            param_hint="--since/--until",
        )
    request = pb.GetReportRequest(group_by=GROUPINGS[group_by])
    request.start_time.FromDatetime(since)
    request.end_time.FromDatetime(until)

    async def fetch(channel: grpc.aio.Channel) -> pb.GetReportResponse:
        response: pb.GetReportResponse = await analytics_service_pb2_grpc.AnalyticsServiceStub(channel).GetReport(
            request
        )
        return response

    report = call(config, "analytics", fetch)
    if as_json:
        echo_json(report)
    elif as_csv:
        click.echo(to_csv(report), nl=False)
    else:
        click.echo(to_table(report))
    if chart is not None:
        write_chart(report, chart)
        click.echo(f"chart written to {chart}", err=True)
