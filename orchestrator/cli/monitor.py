"""``voicebot monitor-session``: a session's events, one line each, live until the call ends."""

from __future__ import annotations

import click
import grpc

from orchestrator.cli.client import call
from orchestrator.cli.options import ClientConfig, pass_config
from orchestrator.cli.output import echo_json, json_option, wants_json
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc

MAX_SESSION_ID_CHARS = 128
# Longest transcript or answer shown on a line; --json prints them whole.
MAX_TEXT_CHARS = 120


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def _latency(latency: pb.TurnLatency) -> str:
    parts = []
    for label, value in (
        ("v2v", latency.first_audio_ms),
        ("transcript", latency.final_transcript_ms),
        ("first token", latency.first_token_ms),
        ("cache", latency.cache_ms),
    ):
        if value:
            parts.append(f"{label} {value} ms")
    return ", ".join(parts)


def describe(event: pb.Event) -> str:
    """The kind and key fields of ``event`` as readable text (without the time)."""
    kind = event.WhichOneof("detail")
    if kind == "turn_completed":
        t = event.turn_completed
        flags = [flag for flag, on in (("cache hit", t.cache_hit), ("interrupted", t.interrupted)) if on]
        intent = f" [{t.intent}]" if t.intent else ""
        text = f"turn {t.turn_index}{intent}  caller: {_clip(t.transcript)!r}  bot: {_clip(t.response_text)!r}"
        details = ", ".join(
            part for part in (_latency(t.latency), *flags, t.adapter and f"adapter {t.adapter}") if part
        )
        return f"{text}  ({details})" if details else text
    label, text = _summary(event, kind)
    return f"{label:<14} {text}"


def _summary(event: pb.Event, kind: str | None) -> tuple[str, str]:
    if kind == "call_started":
        e = event.call_started
        fields = [("caller", e.caller_id), ("language", e.language_code), ("voice", e.voice)]
        fields += [("adapter", e.adapter), ("tenant", e.tenant)]
        return "call started", ", ".join(f"{name} {value}" for name, value in fields if value)
    if kind == "tool_called":
        c = event.tool_called
        result = "ok" if c.ok else "FAILED"
        return "tool", f"{c.name} {result} in {c.duration_ms} ms (turn {c.turn_index}) {_clip(c.arguments_json)}"
    if kind == "barge_in":
        b = event.barge_in
        return "barge-in", f"turn {b.turn_index}, after {b.playback_position_ms} ms of bot audio"
    if kind == "agent_transfer":
        a = event.agent_transfer
        return "transfer", f"turn {a.turn_index}: {a.reason or '-'}"
    if kind == "call_error":
        r = event.call_error
        outcome = "recovered" if r.recovered else "not recovered"
        return "error", f"{r.service or '-'} {r.code or '-'}: {_clip(r.message)} ({outcome})"
    if kind == "call_ended":
        end = event.call_ended
        reason = pb.CallEndReason.Name(end.reason).removeprefix("CALL_END_REASON_")
        return "call ended", f"{reason} after {end.duration_ms / 1000:.1f} s, {end.turn_count} turns"
    return "unknown", kind or "(no detail)"


def line(event: pb.Event) -> str:
    """One event as a line: local time with milliseconds, then :func:`describe`."""
    if event.HasField("time"):
        moment = event.time.ToDatetime().astimezone()
        stamp = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    else:
        stamp = "--:--:--.---"
    return f"{stamp}  {describe(event)}"


def _session_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value or len(value) > MAX_SESSION_ID_CHARS:
        raise click.BadParameter(f"needs 1-{MAX_SESSION_ID_CHARS} characters, got {len(value)}")
    return value


@click.command("monitor-session")
@click.argument("session_id", callback=_session_id)
@click.option("--no-history", is_flag=True, help="Skip the events stored before the watch began.")
@json_option
@pass_config
def monitor_session(config: ClientConfig, session_id: str, no_history: bool, as_json: bool) -> None:
    """Follow SESSION_ID's events live (from analytics) until its call ends.

    Stored events are replayed first unless --no-history. Each event is one line: time, kind and
    key fields; --json prints each event as a JSON line instead. Ctrl-C stops (exit code 130).
    """
    as_json = wants_json(config, as_json)

    async def follow(channel: grpc.aio.Channel) -> tuple[int, bool]:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        request = pb.WatchSessionRequest(session_id=session_id, skip_history=no_history)
        seen, ended = 0, False
        # No deadline: the stream lasts as long as the call and ends after its CALL_ENDED event.
        try:
            async for response in stub.WatchSession(request):
                seen += 1
                ended = response.event.HasField("call_ended")
                if as_json:
                    echo_json(response.event)
                else:
                    click.echo(line(response.event))
        except grpc.aio.AioRpcError as exc:
            if seen and exc.code() == grpc.StatusCode.UNAVAILABLE:
                where = config.target("analytics")
                raise click.ClickException(f"lost {where} during the watch ({exc.details()})") from None
            raise
        return seen, ended

    try:
        seen, ended = call(config, "analytics", follow)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if seen == 0 and no_history:
        click.echo(f"session {session_id}: its call had already ended", err=True)
    elif not ended:
        raise click.ClickException("the stream ended before the call did (analytics_svc stopped?)")
