"""Redis storage with a real redis-server: replicas in step, TTL expiry, restarts, outages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from cache_svc.cache import now_ms
from cache_svc.engine import Entry, Scope
from tests.cache_svc.conftest import RunningCache, StartCache, scope
from tests.conftest import RedisServer
from voicebot.v1 import cache_service_pb2 as pb

HOURS_Q = "What are your opening hours?"
HOURS_A = "Our branches are open on weekdays from nine to five."
BLOCK_Q = "How do I block my card?"


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 15.0) -> None:
    """Poll ``check`` until it holds; replicas apply each other's writes asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


async def hits(cache: RunningCache, query: str, **kwargs: Any) -> bool:
    return (await cache.lookup(query, **kwargs)).hit


async def misses(cache: RunningCache, query: str, **kwargs: Any) -> bool:
    return not (await cache.lookup(query, **kwargs)).hit


async def entries(cache: RunningCache) -> int:
    return (await cache.stub.GetStats(pb.GetStatsRequest())).entries


@pytest.fixture
def start_replica(start_cache: StartCache, redis_server: RedisServer) -> StartCache:
    async def start(**overrides: Any) -> RunningCache:
        overrides.setdefault("sweep_interval_s", 0.2)
        return await start_cache(storage="redis", redis_url=redis_server.url, **overrides)

    return start


async def test_replicas_see_each_others_writes_and_invalidations(start_replica: StartCache) -> None:
    a = await start_replica()
    b = await start_replica(index_type="hnsw")
    stored = await a.store(HOURS_Q, HOURS_A)
    await eventually(lambda: hits(b, "what are your opening hours"), "B sees A's store")
    assert (await b.lookup(HOURS_Q)).entry_id == stored.entry_id

    refreshed = await b.store(HOURS_Q, "Nine to five, Monday to Friday.")
    assert not refreshed.created
    assert refreshed.entry_id == stored.entry_id
    assert (await a.lookup(HOURS_Q)).answer == "Nine to five, Monday to Friday."

    removed = await b.stub.Invalidate(pb.InvalidateRequest(entry_id=stored.entry_id))
    assert removed.removed_count == 1
    await eventually(lambda: misses(a, HOURS_Q), "A drops what B invalidated")
    await eventually(lambda: entries_is(a, 0), "A's index is empty again")

    await a.store(BLOCK_Q, "Block it in the app.")
    await a.store(HOURS_Q, HOURS_A, scope=scope(tenant="other"))
    await eventually(lambda: entries_is(b, 2), "B sees both")
    by_scope = await b.stub.Invalidate(pb.InvalidateRequest(scope=scope()))
    assert by_scope.removed_count == 1
    await eventually(lambda: misses(a, BLOCK_Q), "A drops B's scope invalidation")
    assert await hits(a, HOURS_Q, scope=scope(tenant="other"))

    match = pb.QueryMatch(query="what are your opening hours", scope=scope(tenant="other"))
    assert (await a.stub.Invalidate(pb.InvalidateRequest(query_match=match))).removed_count == 1
    await eventually(lambda: entries_is(b, 0), "B drops A's query-match invalidation")

    await b.store(BLOCK_Q, "Block it in the app.")
    await eventually(lambda: entries_is(a, 1), "A sees B's store")
    assert (await a.stub.Clear(pb.ClearRequest())).removed_count == 1
    await eventually(lambda: entries_is(b, 0), "B sees A's clear")
    assert await misses(b, BLOCK_Q)


async def entries_is(cache: RunningCache, count: int) -> bool:
    return await entries(cache) == count


async def test_ttl_expiry_leaves_redis_and_every_index(start_replica: StartCache, redis_server: RedisServer) -> None:
    a = await start_replica()
    b = await start_replica()
    stored = await a.store(HOURS_Q, HOURS_A, ttl_seconds=1)
    await a.store(BLOCK_Q, "Block it in the app.", ttl_seconds=3600)
    await eventually(lambda: hits(b, HOURS_Q), "B sees the entry")
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert 0 < await client.pttl(f"voicebot:cache:e:{stored.entry_id}") <= 1000
        await asyncio.sleep(1.2)
        assert not await hits(a, HOURS_Q)
        assert not await hits(b, HOURS_Q)
        assert not await client.exists(f"voicebot:cache:e:{stored.entry_id}")
        await eventually(lambda: entries_is(a, 1), "A's sweep drops the expired entry")
        await eventually(lambda: entries_is(b, 1), "B's sweep drops the expired entry")
        await eventually(lambda: zcard_is(client, "voicebot:cache:idx", 1), "the sorted set forgets the expired id")
    finally:
        await client.aclose()


async def zcard_is(client: aioredis.Redis, key: str, count: int) -> bool:
    return int(await client.zcard(key)) == count


async def test_a_refresh_on_one_replica_extends_the_ttl_on_the_other(start_replica: StartCache) -> None:
    a = await start_replica()
    b = await start_replica()
    await a.store(HOURS_Q, HOURS_A, ttl_seconds=1)
    await eventually(lambda: hits(b, HOURS_Q), "B sees the entry")
    await a.store(HOURS_Q, HOURS_A, ttl_seconds=3600)
    await asyncio.sleep(1.5)
    assert await hits(b, HOURS_Q)
    assert await entries(b) == 1


async def test_restart_rebuilds_the_index_from_redis(start_replica: StartCache) -> None:
    first = await start_replica()
    ids = [
        (await first.store(question, "An answer.")).entry_id
        for question in (HOURS_Q, BLOCK_Q, "How do I open a savings account?")
    ]
    await first.stop()
    second = await start_replica(index_type="hnsw")
    assert await entries(second) == 3
    for question, entry_id in zip((HOURS_Q, BLOCK_Q, "How do I open a savings account?"), ids, strict=True):
        hit = await second.lookup(question)
        assert hit.hit
        assert hit.entry_id == entry_id
    assert await misses(second, "How do I unblock my card?")


async def test_eviction_reaches_every_replica(start_replica: StartCache) -> None:
    a = await start_replica(max_entries=2)
    b = await start_replica()
    await a.store(BLOCK_Q, "In the app.", ttl_seconds=100)
    await a.store(HOURS_Q, HOURS_A, ttl_seconds=500)
    await eventually(lambda: entries_is(b, 2), "B sees both")
    await a.store("How do I open a savings account?", "In the app.", ttl_seconds=400)
    assert await entries(a) == 2
    await eventually(lambda: misses(b, BLOCK_Q), "B drops the evicted entry")
    await eventually(lambda: entries_is(b, 2), "B holds the two survivors")


async def test_redis_down_is_unavailable_and_recovers_without_restart(
    start_replica: StartCache, redis_server: RedisServer
) -> None:
    cache = await start_replica()
    await cache.store(HOURS_Q, HOURS_A)
    redis_server.stop()

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await cache.lookup(HOURS_Q)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "redis at 127.0.0.1" in (error.value.details() or "")
    for call in (cache.lookup("How do I close my account?"), cache.store(BLOCK_Q, "In the app.")):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "cache storage unavailable" in (error.value.details() or "")
    # The replica still serves what needs no Redis.
    assert (await cache.stub.GetStats(pb.GetStatsRequest())).storage == "redis"

    redis_server.start()  # same port, empty: the old entries are gone with the old server
    await eventually(lambda: serves(cache), "lookups work again")
    assert await misses(cache, HOURS_Q)
    await eventually(lambda: entries_is(cache, 0), "the index forgets what Redis lost")
    await cache.store(BLOCK_Q, "Block it in the app.")
    assert await hits(cache, BLOCK_Q)


async def serves(cache: RunningCache) -> bool:
    """True once a lookup is answered; False while it is UNAVAILABLE (any other error fails)."""
    try:
        await cache.lookup(HOURS_Q)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return False
    return True


async def test_a_hung_redis_times_out_as_unavailable(start_replica: StartCache, redis_server: RedisServer) -> None:
    cache = await start_replica(redis_timeout_s=0.2)
    await cache.store(HOURS_Q, HOURS_A)
    blocker = aioredis.Redis.from_url(redis_server.url, socket_timeout=10)
    try:
        sleeping = asyncio.create_task(blocker.execute_command("DEBUG", "SLEEP", "1.5"))
        await asyncio.sleep(0.2)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await cache.lookup(HOURS_Q)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        await sleeping
        await eventually(lambda: serves(cache), "lookups work again once Redis answers")
        assert await hits(cache, HOURS_Q)
    finally:
        await blocker.aclose()


async def test_entries_of_another_embedder_are_re_embedded(start_replica: StartCache) -> None:
    cache = await start_replica()
    now = now_ms()
    foreign = Entry(
        "foreign-entry",
        HOURS_Q,
        HOURS_A,
        Scope("bank", "en-US", "faq"),
        {},
        now,
        now,
        now + 3_600_000,
        vector=b"\x00" * 16,
        embedder="some-other-model",
    )
    await cache.app.cache.storage.put([foreign])  # as a replica running another embedder would
    await cache.app.cache.reconcile()
    hit = await cache.lookup("what are your opening hours")
    assert hit.entry_id == "foreign-entry"
    assert hit.similarity == pytest.approx(1.0, abs=1e-4)
