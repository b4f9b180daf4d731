"""Reports computed with pandas from the event rows of a time range.

What each figure means (``ReportRow`` in the contract):

- ``calls``: CALL_STARTED events; ``turns``: TURN_COMPLETED events.
- ``average_handle_time_s``: mean ``duration_ms`` of CALL_ENDED events, in seconds.
- ``containment_ratio``: share of ended calls that were not transferred: a call counts as
  transferred when its session has an AGENT_TRANSFER event in the range or it ended with
  reason TRANSFER.
- ``intent_counts``: turns per intent ("unknown" for turns without one).
- ``latencies``: p50/p95/p99 per stage over the turns that reached it (0 means not reached).
- ``cache_hit_ratio``: cache-hit turns / turns; ``barge_in_rate``: BARGE_IN events / turns;
  ``error_rate``: CALL_ERROR events / turns. Every ratio is 0.0 when its denominator is 0.

Grouping: by hour or day each event counts in the bucket of its own time (UTC). By intent or
adapter a turn counts under its own intent ("unknown" when empty) or adapter ("base" when
empty); a barge-in under the turn it interrupted; call-level events (started, ended, errors)
under every intent or adapter that the call's turns (and, for adapters, its CALL_STARTED) had,
so a call with two intents counts in both rows and rows need not add up to the total. A call
with none of those counts under "unknown".
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from analytics_svc.engine import REPORT_STAGES, Grouping, Report, ReportQuery, ReportRow, StageLatency

FRAME_COLUMNS: tuple[str, ...] = (
    "session_id",
    "time_us",
    "kind",
    "turn_index",
    "intent",
    "adapter",
    "cache_hit",
    *(f"{stage}_ms" for stage in REPORT_STAGES),
    "duration_ms",
    "end_reason",
)
# Nullable numbers (NULL for the kinds that lack them) read as float64 with NaN.
_NUMERIC_COLUMNS = ("turn_index", "cache_hit", *(f"{stage}_ms" for stage in REPORT_STAGES), "duration_ms")
UNKNOWN = "unknown"
BASE_ADAPTER = "base"
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_QUANTILES = (0.5, 0.95, 0.99)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def needed_columns(grouping: Grouping) -> dict[str, tuple[str, ...]]:
    """The columns a report needs, by event kind: fetching fewer values is most of a report's speed.

    Tool calls are not reported. Columns left out read as NaN in ``build_report``.
    """
    by_session = grouping in (Grouping.INTENT, Grouping.ADAPTER)
    session = ("session_id",) if by_session else ()
    latencies = tuple(f"{stage}_ms" for stage in REPORT_STAGES)
    return {
        "turn_completed": (
            "time_us",
            "intent",
            "cache_hit",
            *latencies,
            *(("session_id", "turn_index", "adapter") if by_session else ()),
        ),
        "call_started": ("time_us", *session, *(("adapter",) if by_session else ())),
        "call_ended": ("time_us", "session_id", "duration_ms", "end_reason"),
        "barge_in": ("time_us", *session, *(("turn_index",) if by_session else ())),
        "agent_transfer": ("time_us", "session_id"),
        "call_error": ("time_us", *session),
    }


def build_report(events: pd.DataFrame, query: ReportQuery) -> Report:
    """The report of ``events``, already limited to the query's range.

    ``events`` has a ``kind`` column and the others of ``FRAME_COLUMNS`` that
    ``needed_columns(query.grouping)`` names for that kind; missing ones read as NaN.
    """
    events = events.reindex(columns=list(FRAME_COLUMNS))
    events = events.astype({"time_us": "int64", **dict.fromkeys(_NUMERIC_COLUMNS, "float64")})
    # Sessions as integer codes: the merges and set tests on them are several times faster.
    events["session_id"] = pd.factorize(events["session_id"])[0]
    parts = _split(events)
    total_parts = {name: frame.assign(key="total") for name, frame in parts.items()}
    total = _aggregate(total_parts).get("total", ReportRow("total"))
    rows: tuple[ReportRow, ...] = ()
    if query.grouping is not Grouping.NONE:
        keyed = _keyed(parts, query.grouping)
        grouped = _aggregate(keyed)
        label = _label(query.grouping)
        rows = tuple(dataclasses.replace(grouped[key], group=label(key)) for key in sorted(grouped))
    return Report(total=total, rows=rows, start_us=query.start_us, end_us=query.end_us)


def _split(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    kind = events["kind"]
    ended = events[kind == "call_ended"]
    transfers = events[kind == "agent_transfer"]
    transferred = set(transfers["session_id"]) | set(ended.loc[ended["end_reason"] == "transfer", "session_id"])
    turns = events[kind == "turn_completed"]
    return {
        "turns": turns.assign(intent_label=turns["intent"].fillna("").replace("", UNKNOWN)),
        "started": events[kind == "call_started"],
        "ended": ended.assign(transferred=ended["session_id"].isin(transferred)),
        "barge_ins": events[kind == "barge_in"],
        "errors": events[kind == "call_error"],
    }


def _keyed(parts: dict[str, pd.DataFrame], grouping: Grouping) -> dict[str, pd.DataFrame]:
    if grouping in (Grouping.HOUR, Grouping.DAY):
        width = _HOUR_US if grouping is Grouping.HOUR else _DAY_US
        return {name: frame.assign(key=frame["time_us"] // width) for name, frame in parts.items()}
    turns = parts["turns"]
    if grouping is Grouping.INTENT:
        turns = turns.assign(key=turns["intent_label"])
        session_keys = turns[["session_id", "key"]]
    else:
        turns = turns.assign(key=turns["adapter"].fillna("").replace("", BASE_ADAPTER))
        started = parts["started"]
        started_keys = started[["session_id"]].assign(key=started["adapter"].fillna("").replace("", BASE_ADAPTER))
        session_keys = pd.concat([turns[["session_id", "key"]], started_keys])
    session_keys = session_keys.drop_duplicates()

    def by_session(frame: pd.DataFrame) -> pd.DataFrame:
        merged = frame.drop(columns="key", errors="ignore").merge(session_keys, on="session_id", how="left")
        return merged.assign(key=merged["key"].astype(object).fillna(UNKNOWN))

    turn_keys = turns[["session_id", "turn_index", "key"]].drop_duplicates(["session_id", "turn_index"])
    barge_ins = parts["barge_ins"].merge(turn_keys, on=["session_id", "turn_index"], how="left")
    matched = barge_ins["key"].notna()
    return {
        "turns": turns,
        "started": by_session(parts["started"]),
        "ended": by_session(parts["ended"]),
        "barge_ins": pd.concat([barge_ins[matched], by_session(barge_ins[~matched])]),
        "errors": by_session(parts["errors"]),
    }


def _aggregate(parts: dict[str, pd.DataFrame]) -> dict[Any, ReportRow]:
    turns = parts["turns"]
    ended = parts["ended"]
    calls = parts["started"].groupby("key").size()
    turn_counts = turns.groupby("key").size()
    hits = turns.groupby("key")["cache_hit"].sum()
    handle_s = ended.groupby("key")["duration_ms"].mean() / 1000.0
    containment = 1.0 - ended.groupby("key")["transferred"].mean()
    barge_ins = parts["barge_ins"].groupby("key").size()
    errors = parts["errors"].groupby("key").size()
    intents = turns.groupby(["key", "intent_label"]).size()
    stages: dict[str, tuple[pd.Series, pd.DataFrame]] = {}
    for stage in REPORT_STAGES:
        column = f"{stage}_ms"
        reached = turns.loc[turns[column] > 0, ["key", column]]
        grouped = reached.groupby("key")[column]
        stages[stage] = (grouped.size(), grouped.quantile(list(_QUANTILES)).unstack())

    keys = set(calls.index) | set(turn_counts.index) | set(ended["key"]) | set(barge_ins.index) | set(errors.index)
    intent_map: dict[Any, dict[str, int]] = {}
    for (key, intent), count in intents.items():
        intent_map.setdefault(key, {})[str(intent)] = int(count)
    rows: dict[Any, ReportRow] = {}
    for key in keys:
        n_turns = int(turn_counts.get(key, 0))
        latencies = []
        for stage, (counts, quantiles) in stages.items():
            count = int(counts.get(key, 0))
            if count:
                p50, p95, p99 = (float(quantiles.at[key, q]) for q in _QUANTILES)
                latencies.append(StageLatency(stage, count, p50, p95, p99))
        rows[key] = ReportRow(
            group=str(key),
            calls=int(calls.get(key, 0)),
            turns=n_turns,
            average_handle_time_s=_number(handle_s.get(key, 0.0)),
            containment_ratio=_number(containment.get(key, 0.0)),
            intent_counts=intent_map.get(key, {}),
            latencies=tuple(latencies),
            cache_hit_ratio=_ratio(hits.get(key, 0), n_turns),
            barge_in_rate=_ratio(barge_ins.get(key, 0), n_turns),
            error_rate=_ratio(errors.get(key, 0), n_turns),
        )
    return rows


def _number(value: Any) -> float:
    number = float(value)
    return 0.0 if number != number else number  # NaN (no ended calls) reads as 0.0


def _ratio(numerator: Any, denominator: int) -> float:
    return float(numerator) / denominator if denominator else 0.0


def _label(grouping: Grouping) -> Any:
    if grouping is Grouping.HOUR:
        return lambda key: (_EPOCH + timedelta(hours=int(key))).isoformat()[:13] + ":00Z"
    if grouping is Grouping.DAY:
        return lambda key: (_EPOCH + timedelta(days=int(key))).isoformat()[:10]
    return str
