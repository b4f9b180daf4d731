"""Redis crashes and comes back under live services: what survives depends on its persistence setting.

Sessions (orchestrator) and cache entries (cache_svc) live in one redis-server. With append-only
persistence they survive a SIGKILL of Redis; without it they are gone. Either way the services
reconnect by themselves: no service process is restarted, and new calls work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import grpc
import pytest

from mesh import dial
from orchestrator.caller import place_call
from orchestrator.launcher import LocalMesh
from tests.conftest import RedisServer
from tests.integration.conftest import start_mesh
from voicebot.v1 import cache_service_pb2 as cache_pb
from voicebot.v1 import cache_service_pb2_grpc, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

pytestmark = pytest.mark.slow

# fsync on every write, so even a SIGKILL loses nothing (the default `everysec` may lose up to 1 s).
PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")
SCOPE = cache_pb.CacheScope(tenant="redis-restart", language_code="en-US", intent="branch_hours")
QUESTION = "when does the riverside branch open on saturday"
T = TypeVar("T")


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server, started with append-only persistence."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start(*PERSISTENT)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[LocalMesh]:
    """The whole mesh with sessions and cache entries in ``redis``."""
    running = start_mesh(
        tmp_path_factory.mktemp("mesh"),
        VOICEBOT_ORCHESTRATOR_SESSION_STORE="redis",
        VOICEBOT_CACHE_STORAGE="redis",
        VOICEBOT_REDIS_URL=redis.url,
    )
    yield running
    running.stop()


def crash(redis: RedisServer, *extra: str, keep_files: bool = True) -> None:
    """SIGKILL redis and start it again on the same port (without its files unless ``keep_files``)."""
    redis.kill(keep_files)
    redis.start(*extra)


async def eventually(attempt: Callable[[], Awaitable[T]], within_s: float = 15.0) -> T:
    """``attempt()`` once it stops failing with UNAVAILABLE (a pooled connection the restart broke)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            return await attempt()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def detached_session(stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, caller: str) -> str:
    """A session with one answered turn whose caller dropped off (so it is resumable)."""
    session_id = ""
    answered = asyncio.Event()

    def watch(response: pb.ConverseResponse) -> None:
        nonlocal session_id
        if response.WhichOneof("output") == "event":
            session_id = response.event.session_id
            if response.event.type == pb.CALL_EVENT_TYPE_TURN_ENDED:
                answered.set()

    config = pb.SessionConfig(text_only=True, caller_id=caller)
    call = asyncio.create_task(
        place_call(stub, config, texts=["what are your branch hours"], realtime=False, hang_up=False, on_response=watch)
    )
    await asyncio.wait_for(answered.wait(), 60)
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    for _ in range(100):
        state = (await stub.GetSession(pb.GetSessionRequest(session_id=session_id))).session.state
        if state == pb.SESSION_STATE_DETACHED:
            return session_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"session {session_id} not detached")


async def test_with_append_only_persistence_sessions_and_cache_entries_survive_a_redis_crash(
    mesh: LocalMesh, redis: RedisServer
) -> None:
    pids = [child.process.pid for child in mesh.children]
    async with dial(mesh.child("orchestrator").target) as orch_channel, dial(mesh.child("cache").target) as channel:
        orchestrator = orchestrator_service_pb2_grpc.OrchestratorServiceStub(orch_channel)
        cache = cache_service_pb2_grpc.CacheServiceStub(channel)
        session_id = await detached_session(orchestrator, "+15550100001")
        stored = await cache.Store(
            cache_pb.StoreRequest(query=QUESTION, answer="The riverside branch opens at 9 am on Saturday.", scope=SCOPE)
        )

        crash(redis, *PERSISTENT)

        session = await eventually(lambda: orchestrator.GetSession(pb.GetSessionRequest(session_id=session_id)))
        assert session.session.state == pb.SESSION_STATE_DETACHED
        assert session.session.turn_count == 1
        hit = await eventually(lambda: cache.Lookup(cache_pb.LookupRequest(query=QUESTION, scope=SCOPE)))
        assert hit.hit
        assert hit.entry_id == stored.entry_id
        resume = pb.SessionConfig(text_only=True, caller_id="+15550100001", session_id=session_id)
        record = await eventually(lambda: place_call(orchestrator, resume, texts=["thanks, goodbye"], realtime=False))
    assert record.event_types()[0] == "SESSION_RESUMED"
    assert record.event_types()[-1] == "CALL_ENDED"
    assert [child.process.pid for child in mesh.children] == pids
    assert all(child.process.poll() is None for child in mesh.children)


async def test_without_persistence_state_is_gone_but_the_services_work_on(mesh: LocalMesh, redis: RedisServer) -> None:
    pids = [child.process.pid for child in mesh.children]
    async with dial(mesh.child("orchestrator").target) as orch_channel, dial(mesh.child("cache").target) as channel:
        orchestrator = orchestrator_service_pb2_grpc.OrchestratorServiceStub(orch_channel)
        cache = cache_service_pb2_grpc.CacheServiceStub(channel)
        session_id = await detached_session(orchestrator, "+15550100002")
        await cache.Store(cache_pb.StoreRequest(query=QUESTION, answer="Nine am on Saturday.", scope=SCOPE))

        crash(redis, keep_files=False)

        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await eventually(lambda: orchestrator.GetSession(pb.GetSessionRequest(session_id=session_id)))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        miss = await eventually(lambda: cache.Lookup(cache_pb.LookupRequest(query=QUESTION, scope=SCOPE)))
        assert not miss.hit
        fresh = pb.SessionConfig(text_only=True, caller_id="+15550100003")
        record = await eventually(
            lambda: place_call(orchestrator, fresh, texts=["what are your branch hours"], realtime=False)
        )
        assert "Saturday" in record.bot_text
        assert record.event_types()[-1] == "CALL_ENDED"
        await eventually(lambda: cache.Store(cache_pb.StoreRequest(query=QUESTION, answer="Nine.", scope=SCOPE)))
        again = await cache.Lookup(cache_pb.LookupRequest(query=QUESTION, scope=SCOPE))
    assert again.hit
    assert [child.process.pid for child in mesh.children] == pids
