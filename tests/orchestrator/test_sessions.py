"""Session stores: create, lease, resume on another replica, end, list, expiry (memory and real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mesh.errors import FailedPrecondition, NotFound
from orchestrator.sessions import (
    ACTIVE,
    DETACHED,
    ENDED,
    MemorySessionStore,
    RedisSessionStore,
    SessionState,
    SessionStore,
    new_session_id,
)
from tests.conftest import RedisServer


def session(caller: str = "+1 555 123 4567") -> SessionState:
    return SessionState(new_session_id(), caller, "en-US", "demo-bank", "", "")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(ttl_s=60, lease_s=0.3)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_store = RedisSessionStore(server.url, ttl_s=60, lease_s=0.3)
    yield redis_store
    await redis_store.close()


async def test_a_live_lease_blocks_resume_and_a_lapsed_one_allows_it(store: SessionStore) -> None:
    state = session()
    await store.create(state, "replica-a")
    state.messages.append({"role": "user", "content": "hello"})
    assert await store.save(state, "replica-a")
    with pytest.raises(FailedPrecondition, match="active on another call"):
        await store.resume(state.session_id, "replica-b")
    await asyncio.sleep(0.4)  # replica-a died: its lease lapses
    resumed = await store.resume(state.session_id, "replica-b")
    assert resumed.messages == [{"role": "user", "content": "hello"}]
    assert (resumed.state, resumed.replica) == (ACTIVE, "replica-b")


async def test_release_detaches_or_ends(store: SessionStore) -> None:
    kept, finished = session(), session()
    for state in (kept, finished):
        await store.create(state, "a")
    await store.release(kept, ended=False)
    await store.release(finished, ended=True)
    assert (await store.get(kept.session_id)).state == DETACHED
    assert (await store.resume(kept.session_id, "b")).state == ACTIVE
    with pytest.raises(FailedPrecondition, match="has ended"):
        await store.resume(finished.session_id, "b")


async def test_end_is_idempotent_and_seen_by_the_holder(store: SessionStore) -> None:
    state = session()
    await store.create(state, "a")
    assert await store.end(state.session_id, "fraud check") is True
    assert await store.end(state.session_id, "again") is False
    assert await store.save(state, "a") is False
    await store.release(state, ended=False)
    stored = await store.get(state.session_id)
    assert (stored.state, stored.ended_reason) == (ENDED, "fraud check")


async def test_unknown_sessions_are_not_found(store: SessionStore) -> None:
    with pytest.raises(NotFound):
        await store.get("nope")
    with pytest.raises(NotFound, match="unknown or expired"):
        await store.resume("nope", "a")
    with pytest.raises(NotFound):
        await store.end("nope", "x")


async def test_list_pages_newest_first_and_filters_by_state(store: SessionStore) -> None:
    states = []
    for _ in range(5):
        state = session()
        await store.create(state, "a")
        states.append(state)
        await asyncio.sleep(0.01)
    await store.release(states[0], ended=True)
    first, more = await store.list(limit=2, offset=0, state=None)
    assert [s.session_id for s in first] == [states[4].session_id, states[3].session_id]
    assert more
    rest, more = await store.list(limit=10, offset=2, state=None)
    assert len(rest) == 3
    assert not more
    ended, _ = await store.list(limit=10, offset=0, state=ENDED)
    assert [s.session_id for s in ended] == [states[0].session_id]


def test_caller_id_is_masked() -> None:
    assert session("+1 555 123 4567").masked_caller_id == "+* *** *** 4567"


async def test_redis_store_survives_a_redis_restart(redis_server: RedisServer) -> None:
    store = RedisSessionStore(redis_server.url, ttl_s=60, lease_s=5)
    state = session()
    await store.create(state, "a")
    redis_server.stop()
    with pytest.raises(Exception, match="unreachable"):
        await store.get(state.session_id)
    redis_server.start()
    fresh = session()
    await store.create(fresh, "a")  # reconnects without a restart of the orchestrator
    assert (await store.get(fresh.session_id)).session_id == fresh.session_id
    await store.close()


async def test_memory_sessions_expire_after_the_ttl_unless_a_call_holds_them() -> None:
    store = MemorySessionStore(ttl_s=1, lease_s=30)
    detached, held = session(), session()
    for state in (detached, held):
        await store.create(state, "a")
    await store.release(detached, ended=False)
    store._sessions[detached.session_id].update_time = 0.0  # both last written long ago
    store._sessions[held.session_id].update_time = 0.0
    fresh = session()
    await store.create(fresh, "a")  # creating runs expiry
    with pytest.raises(NotFound):
        await store.get(detached.session_id)
    assert (await store.get(held.session_id)).state == ACTIVE  # its call's lease is live
    assert (await store.get(fresh.session_id)).state == ACTIVE
