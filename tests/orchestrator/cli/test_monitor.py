"""voicebot monitor-session against a real analytics_svc: replayed and live events, JSON lines."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format

from analytics_svc.app import AnalyticsApp
from mesh import MeshServer
from tests.analytics_svc import builders
from tests.orchestrator.cli.conftest import Serve
from tests.orchestrator.cli.helpers import one_line_error, target, usage_error, voicebot
from tests.orchestrator.cli.test_report import ingest
from voicebot.v1 import analytics_service_pb2 as pb

START = datetime.now(UTC) - timedelta(minutes=5)


def whole_call(session_id: str) -> list[pb.Event]:
    at = [START + timedelta(seconds=s) for s in range(10)]
    return [
        builders.call_started(session_id, at[0]),
        builders.turn(session_id, at[1], intent="loan_quote", first_audio_ms=700),
        builders.tool(session_id, at[2], arguments_json='{"amount": 20000}'),
        builders.barge_in(session_id, at[3], index=1),
        builders.error(session_id, at[4], message="tts stream reset"),
        builders.transfer(session_id, at[5], reason="caller asked for an agent", index=2),
        builders.call_ended(session_id, at[6], reason=pb.CALL_END_REASON_TRANSFER, turns=3, duration_ms=45_500),
    ]


async def subscribed(server: MeshServer, session_id: str) -> None:
    """Wait until a WatchSession stream on ``session_id`` is subscribed (the hub offers no event to wait on)."""
    app = server.service
    assert isinstance(app, AnalyticsApp)
    for _ in range(3000):
        if app.hub.count(session_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no watcher subscribed to {session_id}")


async def test_replays_a_finished_call_one_line_per_event(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"]()
    await ingest(server, whole_call("done"))
    result = await voicebot("--analytics", target(server), "monitor-session", "done")
    assert result.exit_code == 0, result.output
    kinds = [line.split()[1] for line in result.stdout.splitlines()]
    assert kinds == ["call", "turn", "tool", "barge-in", "error", "transfer", "call"]
    text = result.stdout
    assert "'how much would a loan cost'" in text
    assert "'about 250 dollars a month'" in text
    assert "v2v 700 ms" in text
    assert "after 1200 ms of bot audio" in text
    assert "transfer       turn 2: caller asked for an agent" in text
    assert "tts UNAVAILABLE: tts stream reset (recovered)" in text
    assert "call ended     TRANSFER after 45.5 s, 3 turns" in text


async def test_json_prints_each_event_as_a_json_line(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"]()
    events = whole_call("json")
    await ingest(server, events)
    result = await voicebot("--analytics", target(server), "--json", "monitor-session", "json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(events)
    parsed = [json_format.ParseDict(json.loads(line), pb.Event()) for line in lines]
    assert [event.event_id for event in parsed] == [event.event_id for event in events]
    assert parsed[1].turn_completed.latency.first_audio_ms == 700


async def test_follows_a_live_call_until_it_ends(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"]()
    events = whole_call("live")
    await ingest(server, events[:1])
    watching = asyncio.create_task(voicebot("--analytics", target(server), "monitor-session", "live", "--no-history"))
    await subscribed(server, "live")
    for event in events[1:]:
        await ingest(server, [event])
    result = await watching
    assert result.exit_code == 0, result.output
    kinds = [line.split()[1] for line in result.stdout.splitlines()]
    assert kinds == ["turn", "tool", "barge-in", "error", "transfer", "call"]


async def test_no_history_on_an_ended_call_says_so(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"]()
    await ingest(server, whole_call("ended"))
    result = await voicebot("--analytics", target(server), "monitor-session", "ended", "--no-history")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "its call had already ended" in result.stderr


async def test_analytics_stopping_mid_watch_is_one_line(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"]()
    await ingest(server, whole_call("cut")[:2])
    watching = asyncio.create_task(voicebot("--analytics", target(server), "monitor-session", "cut"))
    await subscribed(server, "cut")
    await server.stop(0)
    result = await watching
    one_line_error(result, f"lost {target(server)} during the watch")
    assert len(result.stdout.splitlines()) == 2


async def test_bad_session_ids_are_usage_errors() -> None:
    usage_error(await voicebot("monitor-session", ""), "Invalid value for 'SESSION_ID'", "1-128")
    usage_error(await voicebot("monitor-session", "x" * 129), "Invalid value for 'SESSION_ID'")
    usage_error(await voicebot("monitor-session"), "Missing argument 'SESSION_ID'")


async def test_unauthenticated(servers: dict[str, Serve]) -> None:
    server = await servers["analytics"](auth_token="secret")
    one_line_error(await voicebot("--analytics", target(server), "monitor-session", "s"), "refused the call", "--token")
