"""Event-derived Prometheus metrics move as events are stored, and only once per event."""

from __future__ import annotations

from prometheus_client import REGISTRY

from analytics_svc.metrics import ActiveCalls, LabelCap
from tests.analytics_svc.builders import barge_in, call_ended, call_started, error, tool, transfer, turn
from tests.analytics_svc.conftest import Analytics
from voicebot.v1 import analytics_service_pb2 as pb

WATCHED = {
    "started": ("voicebot_calls_started_total", {}),
    "ended_hangup": ("voicebot_calls_ended_total", {"reason": "hangup"}),
    "ended_transfer": ("voicebot_calls_ended_total", {"reason": "transfer"}),
    "active": ("voicebot_calls_active", {}),
    "hits": ("voicebot_cache_hits_total", {}),
    "misses": ("voicebot_cache_misses_total", {}),
    "v2v_count": ("voicebot_turn_latency_seconds_count", {"stage": "first_audio"}),
    "v2v_sum": ("voicebot_turn_latency_seconds_sum", {"stage": "first_audio"}),
    "cache_count": ("voicebot_turn_latency_seconds_count", {"stage": "cache"}),
    "turns_loan": ("voicebot_turns_total", {"intent": "loan_quote"}),
    "barge_ins": ("voicebot_barge_ins_total", {}),
    "transfers": ("voicebot_agent_transfers_total", {}),
    "errors": ("voicebot_call_errors_total", {"service": "tts", "code": "UNAVAILABLE", "recovered": "true"}),
    "errors_other": ("voicebot_call_errors_total", {"service": "other", "code": "other", "recovered": "true"}),
    "tools": ("voicebot_tool_calls_total", {"tool": "loan_payment", "ok": "true"}),
    "duplicates": ("voicebot_analytics_duplicate_events_total", {}),
    "turn_events": ("voicebot_analytics_events_total", {"kind": "turn_completed"}),
}


def snapshot() -> dict[str, float]:
    return {key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in WATCHED.items()}


def delta(before: dict[str, float]) -> dict[str, float]:
    after = snapshot()
    return {key: round(after[key] - before[key], 6) for key in after if after[key] != before[key]}


async def test_ingest_updates_the_call_metrics_once_per_event(analytics: Analytics) -> None:
    before = snapshot()
    started = call_started("m1", event_id="m1-start")
    await analytics.ingest([started, call_started("m2")])
    assert delta(before) == {"started": 2, "active": 2}

    before = snapshot()
    weird_error = error("m1")
    weird_error.call_error.service = "mainframe"
    weird_error.call_error.code = "SOMETHING"
    events = [
        turn("m1", first_audio_ms=800, cache_hit=True, cache_ms=20),
        turn("m1", index=1, first_audio_ms=1200),
        barge_in("m1"),
        transfer("m1"),
        error("m1"),
        weird_error,
        tool("m1"),
        call_ended("m1", reason=pb.CALL_END_REASON_TRANSFER),
        call_ended("m2"),
    ]
    await analytics.ingest(events, [started])
    assert delta(before) == {
        "ended_hangup": 1,
        "ended_transfer": 1,
        "active": -2,
        "hits": 1,
        "misses": 1,
        "v2v_count": 2,
        "v2v_sum": 2.0,
        "cache_count": 1,
        "turns_loan": 2,
        "barge_ins": 1,
        "transfers": 1,
        "errors": 1,
        "errors_other": 1,
        "tools": 1,
        "duplicates": 1,
        "turn_events": 2,
    }


def test_label_values_from_callers_are_bounded() -> None:
    cap = LabelCap(limit=2)
    assert [cap("a"), cap("b"), cap("c"), cap("a"), cap(""), cap("has space")] == [
        "a",
        "b",
        "other",
        "a",
        "unknown",
        "other",
    ]


def test_active_calls_are_bounded() -> None:
    before = REGISTRY.get_sample_value("voicebot_calls_active") or 0.0
    calls = ActiveCalls(limit=2)
    for session in ("a", "b", "c", "c"):
        calls.started(session)
    assert len(calls) == 2
    calls.ended("a")  # forgotten already: no change
    calls.ended("b")
    assert REGISTRY.get_sample_value("voicebot_calls_active") == before + 1
    calls.clear()
    assert REGISTRY.get_sample_value("voicebot_calls_active") == before
