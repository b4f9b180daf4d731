"""Event builders shared by the analytics tests and the benchmark."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from voicebot.v1 import analytics_service_pb2 as pb

_ids = itertools.count()

BASE_TIME = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


def _event(session_id: str, when: datetime | None, event_id: str | None) -> pb.Event:
    event = pb.Event(event_id=event_id or f"e{next(_ids)}", session_id=session_id)
    if when is not None:
        event.time.FromDatetime(when)
    return event


def call_started(
    session_id: str,
    when: datetime | None = None,
    *,
    adapter: str = "",
    caller_id: str = "+15551234567",
    event_id: str | None = None,
) -> pb.Event:
    event = _event(session_id, when, event_id)
    event.call_started.CopyFrom(
        pb.CallStarted(caller_id=caller_id, language_code="en-US", voice="joe", adapter=adapter, tenant="bank")
    )
    return event


def call_ended(
    session_id: str,
    when: datetime | None = None,
    *,
    duration_ms: int = 60_000,
    reason: int = pb.CALL_END_REASON_HANGUP,
    turns: int = 1,
    event_id: str | None = None,
) -> pb.Event:
    event = _event(session_id, when, event_id)
    event.call_ended.CopyFrom(pb.CallEnded(reason=reason, duration_ms=duration_ms, turn_count=turns))
    return event


def turn(
    session_id: str,
    when: datetime | None = None,
    *,
    index: int = 0,
    intent: str = "loan_quote",
    adapter: str = "",
    cache_hit: bool = False,
    first_audio_ms: int = 800,
    first_token_ms: int = 400,
    final_transcript_ms: int = 200,
    cache_ms: int = 0,
    transcript: str = "how much would a loan cost",
    response_text: str = "about 250 dollars a month",
    event_id: str | None = None,
) -> pb.Event:
    event = _event(session_id, when, event_id)
    event.turn_completed.CopyFrom(
        pb.TurnCompleted(
            turn_index=index,
            transcript=transcript,
            response_text=response_text,
            intent=intent,
            adapter=adapter,
            cache_hit=cache_hit,
            latency=pb.TurnLatency(
                final_transcript_ms=final_transcript_ms,
                first_token_ms=first_token_ms,
                first_audio_ms=first_audio_ms,
                cache_ms=cache_ms,
                stt_compute_ms=50,
                llm_compute_ms=120,
                tts_compute_ms=90,
            ),
        )
    )
    return event


def barge_in(session_id: str, when: datetime | None = None, *, index: int = 0, event_id: str | None = None) -> pb.Event:
    event = _event(session_id, when, event_id)
    event.barge_in.CopyFrom(pb.BargeIn(turn_index=index, playback_position_ms=1200))
    return event


def transfer(
    session_id: str, when: datetime | None = None, *, reason: str = "caller asked", index: int = 0
) -> pb.Event:
    event = _event(session_id, when, None)
    event.agent_transfer.CopyFrom(pb.AgentTransfer(reason=reason, turn_index=index))
    return event


def error(
    session_id: str, when: datetime | None = None, *, service: str = "tts", message: str = "tts failed"
) -> pb.Event:
    event = _event(session_id, when, None)
    event.call_error.CopyFrom(pb.CallError(service=service, code="UNAVAILABLE", message=message, recovered=True))
    return event


def tool(
    session_id: str, when: datetime | None = None, *, arguments_json: str = "{}", name: str = "loan_payment"
) -> pb.Event:
    event = _event(session_id, when, None)
    event.tool_called.CopyFrom(pb.ToolCalled(name=name, arguments_json=arguments_json, ok=True, duration_ms=12))
    return event
