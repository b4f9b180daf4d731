"""A call resumes on a second orchestrator process after the first dies, through sessions in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from mesh import dial
from orchestrator.caller import place_call
from orchestrator.launcher import LocalMesh
from tests.conftest import RedisServer
from tests.integration.conftest import start_mesh, start_second_orchestrator
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

pytestmark = pytest.mark.slow

DEMO_CALLER = "+12175550101"


@pytest.fixture(scope="module")
def redis_for_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_for_module: RedisServer
) -> Iterator[tuple[LocalMesh, LocalMesh]]:
    """Replica A with the whole mesh, and replica B: a second orchestrator on the same services and Redis."""
    workdir = tmp_path_factory.mktemp("replicas")
    shared = {
        "VOICEBOT_ORCHESTRATOR_SESSION_STORE": "redis",
        "VOICEBOT_ORCHESTRATOR_REDIS_URL": redis_for_module.url,
        "VOICEBOT_ORCHESTRATOR_LEASE_S": "1.5",
    }
    first = start_mesh(workdir / "a", **shared, VOICEBOT_ORCHESTRATOR_REPLICA="replica-a")
    second = start_second_orchestrator(first, workdir / "b", **shared, VOICEBOT_ORCHESTRATOR_REPLICA="replica-b")
    yield first, second
    second.stop()
    first.stop()


async def test_a_verified_call_resumes_on_another_replica_after_a_crash(replicas: tuple[LocalMesh, LocalMesh]) -> None:
    first, second = replicas
    session_id = ""
    turns_done = asyncio.Event()
    ended_turns = 0

    def watch(response: pb.ConverseResponse) -> None:
        nonlocal session_id, ended_turns
        if response.WhichOneof("output") == "event":
            if response.event.type == pb.CALL_EVENT_TYPE_SESSION_STARTED:
                session_id = response.event.session_id
            if response.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED:
                ended_turns += 1
                if ended_turns == 3:
                    turns_done.set()

    texts = ["what's my balance", "march fourth nineteen eighty", "four two four two"]
    async with dial(first.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        config = pb.SessionConfig(text_only=True, caller_id=DEMO_CALLER)
        call = asyncio.create_task(
            place_call(stub, config, texts=texts, realtime=False, hang_up=False, on_response=watch)
        )
        await asyncio.wait_for(turns_done.wait(), 60)
        first.kill("orchestrator")  # SIGKILL: no chance to release the session
        with pytest.raises(grpc.aio.AioRpcError):
            await asyncio.wait_for(call, 30)

    async with dial(second.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        resume = pb.SessionConfig(text_only=True, session_id=session_id)
        with pytest.raises(grpc.aio.AioRpcError) as held:
            await place_call(stub, resume, texts=["hello"], realtime=False)
        assert held.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # the dead replica's lease is still live
        await asyncio.sleep(2.0)
        record = await place_call(stub, resume, texts=["and my balance again please"], realtime=False)
        session = (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session
    assert record.event_types()[0] == "SESSION_RESUMED"
    assert "balance is $" in record.bot_text
    assert "date of birth" not in record.bot_text.lower()
    assert session.verified
    assert session.turn_count == 4
    assert session.state == pb.SESSION_STATE_ENDED
