"""Rolling restart: SIGTERM an orchestrator with live calls; a second one takes them over through Redis.

Also the analytics outage on replica B, whose event buffer holds 5 events: the rest spill to disk
and every event arrives once analytics is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import dial
from orchestrator.call import DRAINING_DETAIL
from orchestrator.caller import CallRecord, place_call
from orchestrator.launcher import LocalMesh
from tests.conftest import RedisServer
from tests.integration.conftest import start_mesh, start_second_orchestrator
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

pytestmark = pytest.mark.slow

CALLS = 4
QUESTIONS = [
    "what are your branch hours",
    "when is the riverside branch open",
    "what is the routing number",
    "how do I report a lost card",
    "what are your branch hours on saturday",
]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMesh, LocalMesh]]:
    """Replica A with the whole mesh and a 20 s grace, replica B a second orchestrator; sessions in Redis."""
    workdir = tmp_path_factory.mktemp("rollout")
    redis = RedisServer(workdir)
    redis.start()
    shared = {"VOICEBOT_ORCHESTRATOR_SESSION_STORE": "redis", "VOICEBOT_ORCHESTRATOR_REDIS_URL": redis.url}
    first = start_mesh(
        workdir / "a", **shared, VOICEBOT_ORCHESTRATOR_REPLICA="replica-a", VOICEBOT_ORCHESTRATOR_GRACE_S="20"
    )
    try:
        second = start_second_orchestrator(
            first,
            workdir / "b",
            **shared,
            VOICEBOT_ORCHESTRATOR_REPLICA="replica-b",
            VOICEBOT_ORCHESTRATOR_EVENTS_BUFFER="5",
        )
    except BaseException:
        first.stop()
        redis.stop()
        raise
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()
        redis.stop()


def caller(n: int, session_id: str = "") -> pb.SessionConfig:
    """A text call from caller ``n`` (each its own caller id, so per-caller limits do not apply)."""
    return pb.SessionConfig(text_only=True, caller_id=f"+1555010{n:04d}", session_id=session_id)


def expected_per_call(turns: int) -> dict[str, int]:
    """Events every call sends analytics whatever it talks about."""
    return {"call_started": 1, "turn_completed": turns, "call_ended": 1}


def stored_kinds(db_path: str, session_ids: list[str]) -> dict[tuple[str, str], int]:
    """Events per (session, kind) in analytics' SQLite store."""
    marks = ",".join("?" * len(session_ids))
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            f"SELECT session_id, kind, COUNT(*) FROM events WHERE session_id IN ({marks}) GROUP BY 1, 2",
            session_ids,
        ).fetchall()
    return {(session, kind): count for session, kind, count in rows}


def answered(record: CallRecord) -> int:
    """Turns the bot finished answering (interrupted ones do not count)."""
    return sum(1 for e in record.events if e.type == pb.CALL_EVENT_TYPE_TURN_ENDED and not e.detail)


async def test_events_spilled_while_analytics_is_down_all_arrive_after_it_returns(
    replicas: tuple[LocalMesh, LocalMesh],
) -> None:
    first, second = replicas
    spill = second.log_dir.parent / "spill"
    questions = QUESTIONS[:3]
    first.kill("analytics")
    try:
        async with dial(second.child("orchestrator").target) as channel:
            stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
            records = await asyncio.gather(
                *(place_call(stub, caller(10 + n), texts=questions, realtime=False) for n in range(2))
            )
        spilled = sum(len(path.read_text().splitlines()) for path in spill.glob("events-*.jsonl"))
    finally:
        await asyncio.to_thread(first.restart, "analytics")
    assert spilled > 0, "2 calls of 3 turns make more than 5 events"
    # Counted in analytics' own store (delivery order is tested in tests/orchestrator/test_events.py).
    expected = {(r.session_id, kind): n for r in records for kind, n in expected_per_call(len(questions)).items()}
    stored: dict[tuple[str, str], int] = {}
    for _ in range(150):
        stored = stored_kinds(first.env["VOICEBOT_ANALYTICS_DB_PATH"], [r.session_id for r in records])
        if all(stored.get(key, 0) >= n for key, n in expected.items()):
            break
        await asyncio.sleep(0.2)
    assert all(answered(record) == len(questions) for record in records)
    assert {key: stored.get(key, 0) for key in expected} == expected
    assert not list(spill.glob("events-*.jsonl")), "delivered spill files are removed"


async def test_sigterm_drains_to_the_other_replica_without_dropping_a_call(
    replicas: tuple[LocalMesh, LocalMesh],
) -> None:
    first, second = replicas
    a, b = first.child("orchestrator").target, second.child("orchestrator").target
    one_turn_each = asyncio.Semaphore(0)

    def counting(response: pb.ConverseResponse) -> None:
        if response.WhichOneof("output") == "event" and response.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED:
            one_turn_each.release()

    async with dial(a) as channel_a, dial(b) as channel_b:
        stub_a = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel_a)
        stub_b = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel_b)
        watch = health_pb2_grpc.HealthStub(channel_a).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        calls = [
            asyncio.create_task(place_call(stub_a, caller(n), texts=QUESTIONS, realtime=False, on_response=counting))
            for n in range(CALLS)
        ]
        for _ in range(CALLS):
            await asyncio.wait_for(one_turn_each.acquire(), 60)

        first.child("orchestrator").process.send_signal(signal.SIGTERM)
        assert (await asyncio.wait_for(watch.read(), 5)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # an open Watch is an RPC in flight too: it would hold the server for the whole grace
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await place_call(stub_a, caller(CALLS), texts=["hello"], realtime=False)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        dropped = 0
        resumed: list[CallRecord] = []
        records = await asyncio.gather(*calls, return_exceptions=True)
        for record in records:
            if not isinstance(record, CallRecord):
                dropped += 1
                continue
            ended = record.events[-1]
            assert ended.type == pb.CALL_EVENT_TYPE_CALL_ENDED
            if ended.detail != DRAINING_DETAIL:
                assert answered(record) == len(QUESTIONS)  # it finished on A within the grace
                continue
            left = QUESTIONS[answered(record) :]
            again = caller(records.index(record), session_id=record.session_id)
            resumed.append(await place_call(stub_b, again, texts=left, realtime=False))
        assert dropped == 0
        assert first.child("orchestrator").process.wait(30) == 0
        for record in resumed:
            assert record.event_types()[0] == "SESSION_RESUMED"
            assert record.event_types()[-1] == "CALL_ENDED"
            session = (await stub_b.GetSession(pb.GetSessionRequest(session_id=record.session_id))).session
            assert session.turn_count == len(QUESTIONS)
            assert session.state == pb.SESSION_STATE_ENDED
        assert resumed, "with five turns each, at least one call is still running when A drains"
        after = await place_call(stub_b, caller(CALLS + 1), texts=["what are your branch hours"], realtime=False)
        assert "Saturday" in after.bot_text
