"""CacheService: protobuf <-> domain types, validation, delegation to the cache."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping

import grpc

from cache_svc.cache import SemanticCache, now_ms
from cache_svc.config import CacheSettings
from cache_svc.engine import Scope, StoreItem
from mesh.errors import InvalidArgument
from voicebot.v1 import cache_service_pb2 as pb
from voicebot.v1 import cache_service_pb2_grpc

MAX_QUERY_CHARS = 1024
MAX_ANSWER_CHARS = 8192
MAX_TENANT_CHARS = 64
MAX_LANGUAGE_CHARS = 16
MAX_INTENT_CHARS = 64
MAX_TTL_S = 2_592_000
MAX_METADATA = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 1024
MAX_ENTRY_ID_CHARS = 128
MAX_REFUSALS = 20
WARM_BATCH = 64


def _query(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} is empty; it needs 1-{MAX_QUERY_CHARS} characters")
    if len(value) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"{field} has {len(value)} characters; the limit is {MAX_QUERY_CHARS}")
    return value


def _scope(scope: pb.CacheScope, field: str) -> Scope:
    for name, value, limit in (
        ("tenant", scope.tenant, MAX_TENANT_CHARS),
        ("language_code", scope.language_code, MAX_LANGUAGE_CHARS),
        ("intent", scope.intent, MAX_INTENT_CHARS),
    ):
        if len(value) > limit:
            raise InvalidArgument(f"{field}.{name} has {len(value)} characters; the limit is {limit}")
    return Scope(scope.tenant, scope.language_code, scope.intent)


def _threshold(message: pb.LookupRequest | pb.QueryMatch, field: str) -> float | None:
    if not message.HasField("threshold"):
        return None
    value = message.threshold
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"{field} is {value}; it must be between 0.0 and 1.0")
    return float(value)


def _item(
    query: str, answer: str, scope: pb.CacheScope, ttl_seconds: int, metadata: Mapping[str, str], default_ttl: int
) -> StoreItem:
    _query(query, "query")
    if not answer.strip():
        raise InvalidArgument(f"answer is empty; it needs 1-{MAX_ANSWER_CHARS} characters")
    if len(answer) > MAX_ANSWER_CHARS:
        raise InvalidArgument(f"answer has {len(answer)} characters; the limit is {MAX_ANSWER_CHARS}")
    if not 0 <= ttl_seconds <= MAX_TTL_S:
        raise InvalidArgument(f"ttl_seconds is {ttl_seconds}; it must be 0 (server default) to {MAX_TTL_S}")
    if len(metadata) > MAX_METADATA:
        raise InvalidArgument(f"metadata has {len(metadata)} entries; the limit is {MAX_METADATA}")
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidArgument(f"metadata key {key[:80]!r} must have 1-{MAX_METADATA_KEY_CHARS} characters")
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise InvalidArgument(
                f"metadata[{key!r}] has {len(value)} characters; the limit is {MAX_METADATA_VALUE_CHARS}"
            )
    return StoreItem(query, answer, _scope(scope, "scope"), ttl_seconds or default_ttl, dict(metadata))


class CacheServicer(cache_service_pb2_grpc.CacheServiceServicer):
    """Validates requests and delegates them to the :class:`SemanticCache`."""

    def __init__(self, cache: SemanticCache, settings: CacheSettings) -> None:
        """Serve ``cache`` with the defaults of ``settings``."""
        self.cache = cache
        self.settings = settings

    async def Lookup(self, request: pb.LookupRequest, context: grpc.aio.ServicerContext) -> pb.LookupResponse:
        """Find the best safe cached answer, or report a miss."""
        query = _query(request.query, "query")
        scope = _scope(request.scope, "scope")
        threshold = _threshold(request, "threshold")
        result = await self.cache.lookup(query, scope, threshold)
        response = pb.LookupResponse(
            hit=result.entry is not None,
            similarity=result.similarity,
            embed_us=result.embed_us,
            search_us=result.search_us,
        )
        if result.entry is not None:
            response.answer = result.entry.answer
            response.entry_id = result.entry.id
            response.age_ms = max(0, now_ms() - result.entry.updated_ms)
            response.metadata.update(result.entry.metadata)
        return response

    async def Store(self, request: pb.StoreRequest, context: grpc.aio.ServicerContext) -> pb.StoreResponse:
        """Store one answer; refuses personal data with FAILED_PRECONDITION."""
        item = _item(
            request.query,
            request.answer,
            request.scope,
            request.ttl_seconds,
            request.metadata,
            self.settings.default_ttl_s,
        )
        outcome = await self.cache.store_one(item)
        return pb.StoreResponse(entry_id=outcome.entry_id, created=outcome.created)

    async def Invalidate(
        self, request: pb.InvalidateRequest, context: grpc.aio.ServicerContext
    ) -> pb.InvalidateResponse:
        """Remove entries by id, by scope or by query match."""
        selector = request.WhichOneof("selector")
        if selector == "entry_id":
            if not request.entry_id or len(request.entry_id) > MAX_ENTRY_ID_CHARS:
                raise InvalidArgument(f"entry_id must have 1-{MAX_ENTRY_ID_CHARS} characters")
            removed = await self.cache.invalidate_id(request.entry_id)
        elif selector == "scope":
            removed = await self.cache.invalidate_scope(_scope(request.scope, "scope"))
        elif selector == "query_match":
            match = request.query_match
            removed = await self.cache.invalidate_query(
                _query(match.query, "query_match.query"),
                _scope(match.scope, "query_match.scope"),
                _threshold(match, "query_match.threshold"),
            )
        else:
            raise InvalidArgument("selector is required: set entry_id, scope or query_match")
        return pb.InvalidateResponse(removed_count=removed)

    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetStatsResponse:
        """Report this replica's counters."""
        stats = self.cache.stats()
        return pb.GetStatsResponse(
            entries=stats.entries,
            hits=stats.hits,
            misses=stats.misses,
            hit_ratio=stats.hit_ratio,
            lookup_p50_ms=stats.lookup_p50_ms,
            lookup_p99_ms=stats.lookup_p99_ms,
            memory_bytes=stats.memory_bytes,
            embedder=stats.embedder,
            index_type=stats.index_type,
            storage=stats.storage,
        )

    async def Clear(self, request: pb.ClearRequest, context: grpc.aio.ServicerContext) -> pb.ClearResponse:
        """Remove everything, or one scope."""
        scope = _scope(request.scope, "scope") if request.HasField("scope") else None
        return pb.ClearResponse(removed_count=await self.cache.clear(scope))

    async def Warm(
        self, request_iterator: AsyncIterator[pb.WarmRequest], context: grpc.aio.ServicerContext
    ) -> pb.WarmResponse:
        """Store a stream of pairs in batches; invalid or personal pairs are counted and named, not fatal."""
        response = pb.WarmResponse()
        batch: list[tuple[int, StoreItem]] = []
        refusals: list[tuple[int, str]] = []  # the earliest pairs' reasons, in pair order at the end

        def refuse(number: int, reason: str) -> None:
            response.refused_count += 1
            refusals.append((number, reason))
            if len(refusals) > 2 * MAX_REFUSALS:
                refusals.sort()
                del refusals[MAX_REFUSALS:]

        async def flush() -> None:
            outcomes = await self.cache.store([item for _, item in batch])
            for (number, _), outcome in zip(batch, outcomes, strict=True):
                if outcome.refusal is not None:
                    refuse(number, outcome.refusal)
                elif outcome.created:
                    response.created_count += 1
                else:
                    response.refreshed_count += 1
            batch.clear()

        number = 0
        async for pair in request_iterator:
            number += 1
            try:
                item = _item(
                    pair.query, pair.answer, pair.scope, pair.ttl_seconds, pair.metadata, self.settings.default_ttl_s
                )
            except InvalidArgument as exc:
                refuse(number, exc.message)
                continue
            batch.append((number, item))
            if len(batch) >= WARM_BATCH:
                await flush()
        if batch:
            await flush()
        refusals.sort()
        response.refusals.extend(f"pair {number}: {reason}" for number, reason in refusals[:MAX_REFUSALS])
        return response
