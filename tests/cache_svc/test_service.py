"""CacheService over real gRPC on loopback, on the embedded defaults (hashing, flat, memory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest

from cache_svc.app import ADMIN_METHODS, CacheApp
from cache_svc.config import CacheSettings
from mesh import DialOptions, SettingsError, dial
from tests.cache_svc.conftest import RunningCache, StartCache, scope
from voicebot.v1 import cache_service_pb2 as pb
from voicebot.v1 import cache_service_pb2_grpc

HOURS_Q = "What are your opening hours?"
HOURS_A = "Our branches are open on weekdays from nine to five."


async def rejected(cache: RunningCache, call: Awaitable[Any], code: grpc.StatusCode, *words: str) -> None:
    """``call`` fails with ``code`` naming ``words``, while a concurrent lookup is still served."""
    good = cache.lookup(HOURS_Q)
    results = await asyncio.gather(call, good, return_exceptions=True)
    error, served = results
    assert isinstance(error, grpc.aio.AioRpcError), error
    assert error.code() == code, error.details()
    for word in words:
        assert word in (error.details() or ""), error.details()
    assert isinstance(served, pb.LookupResponse), served


async def test_store_then_lookup_hits_with_entry_details(cache: RunningCache) -> None:
    stored = await cache.store(HOURS_Q, HOURS_A, metadata={"source": "faq-2024"})
    assert stored.created
    hit = await cache.lookup("what are your OPENING hours")
    assert hit.hit
    assert hit.answer == HOURS_A
    assert hit.entry_id == stored.entry_id
    assert hit.similarity == pytest.approx(1.0, abs=1e-4)
    assert hit.age_ms >= 0
    assert dict(hit.metadata) == {"source": "faq-2024"}
    assert hit.embed_us > 0


async def test_store_is_idempotent_and_replaces_the_answer(cache: RunningCache) -> None:
    first = await cache.store(HOURS_Q, HOURS_A)
    second = await cache.store("  what are your opening hours ", "Nine to five, Monday to Friday.", ttl_seconds=60)
    assert second.entry_id == first.entry_id
    assert first.created
    assert not second.created
    hit = await cache.lookup(HOURS_Q)
    assert hit.answer == "Nine to five, Monday to Friday."
    stats = await cache.stub.GetStats(pb.GetStatsRequest())
    assert stats.entries == 1


async def test_scope_partitions_the_cache(cache: RunningCache) -> None:
    await cache.store(HOURS_Q, HOURS_A, scope=scope(tenant="bank-a"))
    miss = await cache.lookup(HOURS_Q, scope=scope(tenant="bank-b"))
    assert not miss.hit
    assert miss.similarity == 0.0
    assert not (await cache.lookup(HOURS_Q, scope=scope(tenant="bank-a", intent="other"))).hit
    # BCP-47 tags are case-insensitive.
    assert (await cache.lookup(HOURS_Q, scope=scope(tenant="bank-a", language_code="EN-us"))).hit


async def test_empty_scope_is_a_scope_of_its_own(cache: RunningCache) -> None:
    await cache.stub.Store(pb.StoreRequest(query=HOURS_Q, answer=HOURS_A))
    assert (await cache.stub.Lookup(pb.LookupRequest(query=HOURS_Q))).hit
    assert not (await cache.lookup(HOURS_Q)).hit


@pytest.mark.parametrize(
    ("stored", "probe"),
    [
        ("How do I block my card?", "How do I unblock my card?"),
        ("Can I withdraw cash abroad?", "Can't I withdraw cash abroad?"),
        ("Can I transfer $500 today?", "Can I transfer $5000 today?"),
        ("Can I withdraw twenty thousand dollars?", "Can I withdraw two thousand dollars?"),
        ("Are you open on Saturday?", "Are you open on Sunday?"),
    ],
)
async def test_opposites_and_changed_numbers_never_hit(cache: RunningCache, stored: str, probe: str) -> None:
    await cache.store(stored, "A general answer.")
    miss = await cache.lookup(probe, threshold=0.0)
    assert not miss.hit
    assert not miss.answer
    assert not miss.entry_id


async def test_same_amount_in_other_words_hits(cache: RunningCache) -> None:
    await cache.store("Can I withdraw 20,000 dollars in one day?", "Order large withdrawals from a branch.")
    assert (await cache.lookup("can I withdraw twenty thousand dollars in one day")).hit


async def test_threshold_per_request(cache: RunningCache) -> None:
    await cache.store("How do I reset my online banking password?", "Use 'Forgot password'.")
    paraphrase = "I forgot my online banking password, how can I reset it?"
    assert (await cache.lookup(paraphrase)).hit
    strict = await cache.lookup(paraphrase, threshold=0.99)
    assert not strict.hit
    assert 0.6 < strict.similarity < 0.99


async def test_personal_answers_are_refused(cache: RunningCache) -> None:
    await rejected(
        cache,
        cache.store("What is my balance?", "Your balance is $1,204.17."),
        grpc.StatusCode.FAILED_PRECONDITION,
        "answer holds a balance",
    )
    await rejected(
        cache,
        cache.store("Which card is blocked?", "Card 4111 1111 1111 1111 is blocked."),
        grpc.StatusCode.FAILED_PRECONDITION,
        "answer holds a card number",
    )
    await rejected(
        cache,
        cache.store("Who handles my case?", "Write to anna.smith@example.com."),
        grpc.StatusCode.FAILED_PRECONDITION,
        "e-mail",
    )
    await rejected(
        cache,
        cache.store(HOURS_Q, HOURS_A, metadata={"cacheable": "false"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "cacheable=false",
    )
    stats = await cache.stub.GetStats(pb.GetStatsRequest())
    assert stats.entries == 0


async def test_public_contacts_may_be_stored(start_cache: StartCache) -> None:
    cache = await start_cache(allowed_contacts=("0800 123 456",))
    stored = await cache.store("How can I contact you?", "Call us free on 0800 123 456.")
    assert stored.entry_id
    await rejected(
        cache,
        cache.store("How can I reach the fraud team?", "Call 0800 999 111."),
        grpc.StatusCode.FAILED_PRECONDITION,
        "phone number",
    )


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (pb.LookupRequest(query=""), ("query", "empty")),
        (pb.LookupRequest(query="   "), ("query", "empty")),
        (pb.LookupRequest(query="x" * 1025), ("query", "1025", "1024")),
        (pb.LookupRequest(query="hours", threshold=1.5), ("threshold", "0.0 and 1.0")),
        (pb.LookupRequest(query="hours", threshold=-0.1), ("threshold",)),
        (pb.LookupRequest(query="hours", threshold=float("nan")), ("threshold",)),
        (pb.LookupRequest(query="hours", scope=pb.CacheScope(tenant="t" * 65)), ("scope.tenant", "64")),
        (pb.LookupRequest(query="hours", scope=pb.CacheScope(language_code="l" * 17)), ("scope.language_code", "16")),
        (pb.LookupRequest(query="hours", scope=pb.CacheScope(intent="i" * 65)), ("scope.intent", "64")),
    ],
)
async def test_bad_lookups_are_invalid_argument(
    cache: RunningCache, request_: pb.LookupRequest, words: tuple[str]
) -> None:
    await rejected(cache, cache.stub.Lookup(request_), grpc.StatusCode.INVALID_ARGUMENT, *words)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"query": "", "answer": "a"}, ("query", "empty")),
        ({"query": "q", "answer": ""}, ("answer", "empty")),
        ({"query": "q", "answer": "a" * 8193}, ("answer", "8193", "8192")),
        ({"query": "q" * 1025, "answer": "a"}, ("query", "1024")),
        ({"query": "q", "answer": "a", "ttl_seconds": -1}, ("ttl_seconds", "-1")),
        ({"query": "q", "answer": "a", "ttl_seconds": 2_592_001}, ("ttl_seconds", "2592000")),
        ({"query": "q", "answer": "a", "metadata": {f"k{i}": "v" for i in range(17)}}, ("metadata", "17", "16")),
        ({"query": "q", "answer": "a", "metadata": {"k": "v" * 1025}}, ("metadata", "1024")),
    ],
)
async def test_bad_stores_are_invalid_argument(cache: RunningCache, fields: dict[str, Any], words: tuple[str]) -> None:
    await rejected(cache, cache.stub.Store(pb.StoreRequest(**fields)), grpc.StatusCode.INVALID_ARGUMENT, *words)


async def test_bad_invalidations_are_invalid_argument(cache: RunningCache) -> None:
    await rejected(cache, cache.stub.Invalidate(pb.InvalidateRequest()), grpc.StatusCode.INVALID_ARGUMENT, "selector")
    await rejected(
        cache,
        cache.stub.Invalidate(pb.InvalidateRequest(query_match=pb.QueryMatch(query=""))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "query_match.query",
    )
    await rejected(
        cache,
        cache.stub.Invalidate(pb.InvalidateRequest(query_match=pb.QueryMatch(query="q", threshold=2.0))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "query_match.threshold",
    )


async def test_invalidate_by_id_scope_and_query(cache: RunningCache) -> None:
    hours = await cache.store(HOURS_Q, HOURS_A)
    await cache.store("How do I block my card?", "Block it in the app.")
    await cache.store("How do I unblock my card?", "Unblock it in the app.")
    await cache.store(HOURS_Q, HOURS_A, scope=scope(tenant="other"))

    removed = await cache.stub.Invalidate(pb.InvalidateRequest(entry_id=hours.entry_id))
    assert removed.removed_count == 1
    assert not (await cache.lookup(HOURS_Q)).hit
    again = await cache.stub.Invalidate(pb.InvalidateRequest(entry_id=hours.entry_id))
    assert again.removed_count == 0

    # A query match removes what a lookup would hit, never the opposite question.
    match = pb.QueryMatch(query="how can I block my card", scope=scope())
    assert (await cache.stub.Invalidate(pb.InvalidateRequest(query_match=match))).removed_count == 1
    assert not (await cache.lookup("How do I block my card?")).hit
    assert (await cache.lookup("How do I unblock my card?")).hit

    by_scope = await cache.stub.Invalidate(pb.InvalidateRequest(scope=scope()))
    assert by_scope.removed_count == 1
    assert (await cache.lookup(HOURS_Q, scope=scope(tenant="other"))).hit


async def test_clear_one_scope_or_everything(cache: RunningCache) -> None:
    await cache.store(HOURS_Q, HOURS_A)
    await cache.store(HOURS_Q, HOURS_A, scope=scope(tenant="other"))
    await cache.store("How do I block my card?", "In the app.", scope=scope(tenant="other"))
    assert (await cache.stub.Clear(pb.ClearRequest(scope=scope()))).removed_count == 1
    assert (await cache.lookup(HOURS_Q, scope=scope(tenant="other"))).hit
    assert (await cache.stub.Clear(pb.ClearRequest())).removed_count == 2
    assert (await cache.stub.GetStats(pb.GetStatsRequest())).entries == 0


async def warm_pairs() -> AsyncIterator[pb.WarmRequest]:
    yield pb.WarmRequest(query=HOURS_Q, answer=HOURS_A, scope=scope())
    yield pb.WarmRequest(query="How do I block my card?", answer="In the app.", scope=scope())
    yield pb.WarmRequest(query="What is my balance?", answer="Your balance is $310.00.", scope=scope())
    yield pb.WarmRequest(query="", answer="No question.", scope=scope())
    yield pb.WarmRequest(query="what are your opening hours", answer=HOURS_A, scope=scope())
    yield pb.WarmRequest(query="Is it cacheable?", answer="No.", scope=scope(), metadata={"cacheable": "false"})


async def test_warm_counts_created_refreshed_and_refused(cache: RunningCache) -> None:
    summary = await cache.stub.Warm(warm_pairs())
    assert (summary.created_count, summary.refreshed_count, summary.refused_count) == (2, 1, 3)
    assert list(summary.refusals) == [
        "pair 3: answer holds a balance or amount tied to the customer",
        "pair 4: query is empty; it needs 1-1024 characters",
        "pair 6: metadata marks the entry not cacheable (cacheable=false)",
    ]
    assert (await cache.lookup("How do I block my card?")).hit


async def test_warm_reports_at_most_20_refusals(cache: RunningCache) -> None:
    async def many() -> AsyncIterator[pb.WarmRequest]:
        for i in range(150):
            yield pb.WarmRequest(query=f"question {i}", answer="" if i % 2 else f"answer {i}", scope=scope())

    summary = await cache.stub.Warm(many())
    assert summary.created_count == 75
    assert summary.refused_count == 75
    assert len(summary.refusals) == 20


async def test_stats(cache: RunningCache) -> None:
    empty = await cache.stub.GetStats(pb.GetStatsRequest())
    assert (empty.hits, empty.misses, empty.hit_ratio, empty.lookup_p99_ms) == (0, 0, 0.0, 0.0)
    await cache.store(HOURS_Q, HOURS_A)
    await cache.lookup(HOURS_Q)
    await cache.lookup("How do I close my account?")
    await cache.lookup(HOURS_Q)
    stats = await cache.stub.GetStats(pb.GetStatsRequest())
    assert (stats.entries, stats.hits, stats.misses) == (1, 2, 1)
    assert stats.hit_ratio == pytest.approx(2 / 3)
    assert 0 < stats.lookup_p50_ms <= stats.lookup_p99_ms
    assert stats.memory_bytes > 0
    assert (stats.embedder, stats.index_type, stats.storage) == ("hashing-ngram-384", "flat", "memory")


async def test_ttl_expiry_in_memory(start_cache: StartCache) -> None:
    cache = await start_cache(sweep_interval_s=0.2)
    await cache.store(HOURS_Q, HOURS_A, ttl_seconds=1)
    await cache.store("How do I block my card?", "In the app.", ttl_seconds=3600)
    assert (await cache.lookup(HOURS_Q)).hit
    await asyncio.sleep(1.5)
    assert not (await cache.lookup(HOURS_Q)).hit
    assert (await cache.stub.GetStats(pb.GetStatsRequest())).entries == 1


async def test_default_ttl_applies(start_cache: StartCache) -> None:
    cache = await start_cache(default_ttl_s=1, sweep_interval_s=0.2)
    await cache.store(HOURS_Q, HOURS_A)
    assert (await cache.lookup(HOURS_Q)).hit
    await asyncio.sleep(1.5)
    assert not (await cache.lookup(HOURS_Q)).hit


async def test_max_entries_evicts_closest_to_expiry(start_cache: StartCache) -> None:
    cache = await start_cache(max_entries=3)
    questions = ["How do I block my card?", HOURS_Q, "How do I open a savings account?", "Where is my nearest branch?"]
    for ttl, question in zip((100, 500, 400, 300), questions, strict=True):
        await cache.store(question, "An answer.", ttl_seconds=ttl)
    assert (await cache.stub.GetStats(pb.GetStatsRequest())).entries == 3
    assert not (await cache.lookup("How do I block my card?")).hit
    for question in questions[1:]:
        assert (await cache.lookup(question)).hit


async def test_hnsw_index_serves_and_invalidates(start_cache: StartCache) -> None:
    cache = await start_cache(index_type="hnsw")
    stored = await cache.store(HOURS_Q, HOURS_A)
    await cache.store("How do I block my card?", "In the app.")
    assert (await cache.lookup(HOURS_Q)).hit
    await cache.stub.Invalidate(pb.InvalidateRequest(entry_id=stored.entry_id))
    assert not (await cache.lookup(HOURS_Q)).hit
    assert (await cache.lookup("How do I block my card?")).hit
    assert (await cache.stub.GetStats(pb.GetStatsRequest())).index_type == "hnsw"


async def warm_nothing(stub: cache_service_pb2_grpc.CacheServiceStub) -> pb.WarmResponse:
    """A Warm call that writes no pairs: a server that refuses at once never races a client still writing."""
    call = stub.Warm()
    await call.done_writing()
    return await call


async def test_admin_rpcs_need_the_admin_token(start_cache: StartCache) -> None:
    assert {
        "/voicebot.v1.CacheService/Invalidate",
        "/voicebot.v1.CacheService/Clear",
        "/voicebot.v1.CacheService/Warm",
    } == ADMIN_METHODS
    user = await start_cache(token="user-token", auth_token="user-token", admin_token="admin-token")
    await user.store(HOURS_Q, HOURS_A)
    assert (await user.lookup(HOURS_Q)).hit
    assert (await user.stub.GetStats(pb.GetStatsRequest())).entries == 1
    for call in (
        user.stub.Clear(pb.ClearRequest()),
        user.stub.Invalidate(pb.InvalidateRequest(scope=scope())),
        warm_nothing(user.stub),
    ):
        await rejected(user, call, grpc.StatusCode.PERMISSION_DENIED, "admin")
    target = f"127.0.0.1:{user.server.port}"
    async with dial(target) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await cache_service_pb2_grpc.CacheServiceStub(anonymous).Clear(pb.ClearRequest())
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with dial(target, DialOptions(token="admin-token")) as admin:
        admin_stub = cache_service_pb2_grpc.CacheServiceStub(admin)
        assert (await warm_nothing(admin_stub)).created_count == 0
        cleared = await admin_stub.Clear(pb.ClearRequest())
        assert cleared.removed_count == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(SettingsError, match="VOICEBOT_CACHE_INDEX_TYPE"):
        CacheApp(CacheSettings(index_type="ivf"))
    with pytest.raises(SettingsError, match="VOICEBOT_CACHE_ENGINE"):
        CacheApp(CacheSettings(engine="bert"))
    with pytest.raises(SettingsError, match="VOICEBOT_CACHE_STORAGE"):
        CacheApp(CacheSettings(storage="disk"))
    with pytest.raises(SettingsError, match="VOICEBOT_CACHE_THRESHOLD"):
        CacheApp(CacheSettings(threshold=1.5))


def test_threshold_setting_parses_empty_as_embedder_default() -> None:
    assert CacheSettings.from_env({"VOICEBOT_CACHE_THRESHOLD": ""}).threshold is None
    assert CacheSettings.from_env({"VOICEBOT_CACHE_THRESHOLD": "0.8"}).threshold == 0.8
    settings = CacheSettings.from_env({"VOICEBOT_CACHE_ALLOWED_CONTACTS": "0800 123 456, help@bank.example"})
    assert settings.allowed_contacts == ("0800 123 456", "help@bank.example")


async def test_hnsw_tombstones_are_rebuilt_away_while_serving(start_cache: StartCache) -> None:
    cache = await start_cache(index_type="hnsw")

    async def pairs() -> AsyncIterator[pb.WarmRequest]:
        for i in range(120):
            yield pb.WarmRequest(query=f"synthetic question number {i}", answer=f"answer {i}", scope=scope())

    assert (await cache.stub.Warm(pairs())).created_count == 120
    ids = [(await cache.lookup(f"synthetic question number {i}")).entry_id for i in range(120)]
    for entry_id in ids[:60]:
        await cache.stub.Invalidate(pb.InvalidateRequest(entry_id=entry_id))
    index = cache.app.cache.index
    for _ in range(200):
        if index.tombstones() == 0:
            break
        await asyncio.sleep(0.05)
    assert index.tombstones() == 0
    assert len(index) == 60
    assert not (await cache.lookup("synthetic question number 3")).hit
    assert (await cache.lookup("synthetic question number 99")).entry_id == ids[99]
