"""The semantic cache: embedder + per-replica faiss index + storage + safety rules.

A lookup embeds the question (embedder bridge), searches the partition of its scope and safety
signature (index bridge), then reads the best candidates from the storage, which is the source
of truth: a candidate the storage no longer has (expired, or invalidated by another replica
whose event has not arrived yet) is dropped from the index and the next one is tried.

Replicas stay in step through the storage's change feed (:meth:`Storage.changes`); a periodic
sweep drops expired entries from the index, and a periodic reconciliation against the storage
repairs anything a lost connection hid.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import numpy as np

from cache_svc import guards
from cache_svc.config import CacheSettings
from cache_svc.engine import (
    Cleared,
    Deleted,
    Embedder,
    Entry,
    LookupResult,
    Resync,
    Scope,
    Stats,
    Storage,
    StoreItem,
    StoreOutcome,
    Upserted,
    Vectors,
    entry_id,
)
from cache_svc.index import PartitionKey, RebuildJob, VectorIndex, search_threads_one
from mesh.errors import FailedPrecondition, MeshError, Unavailable
from mesh.workers import WorkerBridge

log = logging.getLogger("cache_svc.cache")

# Candidates read from the storage per lookup before giving up (each is one Redis round trip).
_MAX_READS = 3
# Entries that an invalidation by query may remove at once.
QUERY_MATCH_LIMIT = 1024


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def partition_key(query: str, scope: Scope) -> PartitionKey:
    """Index partition of ``query``: its scope and safety signature."""
    return scope, guards.signature(query).key


class SemanticCache:
    """One replica's cache. ``start`` loads the index from the storage; ``stop`` releases it."""

    def __init__(self, settings: CacheSettings, embedder: Embedder, storage: Storage) -> None:
        """Wire the parts; nothing loads until :meth:`start`."""
        self.settings = settings
        self.embedder = embedder
        self.storage = storage
        self.index = VectorIndex(
            embedder.dim,
            settings.index_type,
            hnsw_m=settings.hnsw_m,
            ef_search=settings.hnsw_ef_search,
            ef_construction=settings.hnsw_ef_construction,
            rebuild_ratio=settings.hnsw_rebuild_ratio,
            build_threads=settings.faiss_build_threads,
        )
        self.threshold = embedder.default_threshold if settings.threshold is None else settings.threshold
        self._embed = WorkerBridge(
            "cache-embed", settings.embed_workers, max(settings.max_pending, settings.embed_workers)
        )
        # faiss indexes are not safe to search while another thread writes: one worker serialises them.
        self._search = WorkerBridge("cache-index", 1, max(settings.max_pending, 1))
        self._rebuild = WorkerBridge("cache-rebuild", 1, 8)
        self._tasks: set[asyncio.Task[None]] = set()
        self._hits = 0
        self._misses = 0
        self._latencies: collections.deque[float] = collections.deque(maxlen=max(settings.latency_window, 1))

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the embedder, connect the storage, rebuild the index from it, start the background work."""
        await self._embed.run(self.embedder.load)
        await self._embed.run(self.embedder.embed, ["warm-up question"])
        await self._search.run(self._warm_index)
        attempt = 0
        while True:
            try:
                loaded = await self._load()
                break
            except Unavailable as exc:
                attempt += 1
                log.warning(
                    "storage unreachable, health stays NOT_SERVING; retrying in 1 s (attempt %d): %s",
                    attempt,
                    exc.message,
                )
                await asyncio.sleep(1.0)
        log.info(
            "cache ready",
            extra={"entries": loaded, "embedder": self.embedder.name, "index": self.settings.index_type},
        )
        self._spawn(self._follow_changes())
        self._spawn(self._housekeeping())

    async def stop(self) -> None:
        """Stop the background work, disconnect, release the threads."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.storage.close()
        for bridge in (self._embed, self._search, self._rebuild):
            bridge.close()

    async def _load(self) -> int:
        """Connect the storage and fill the index from it; returns the number of entries."""
        await self.storage.start()
        await self._search.run(self.index.clear)
        loaded = 0
        async for entries in self.storage.load():
            await self._apply_upserts(entries)
            loaded += len(entries)
        return loaded

    def _warm_index(self) -> None:
        """Make the index thread single-threaded for faiss and search a throwaway index once."""
        search_threads_one()
        scratch = VectorIndex(self.embedder.dim, self.settings.index_type)
        vector = np.zeros((1, self.embedder.dim), dtype=np.float32)
        vector[0, 0] = 1.0
        key = (Scope(), "")
        scratch.upsert(["warm-up"], [key], vector, [2**62])
        scratch.search(key, vector[0], 1, 0.0, 0)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lookups --------------------------------------------------------------------------

    def _prepare(self, queries: Sequence[str]) -> tuple[Vectors, list[str]]:
        """Embeddings and signature keys of ``queries`` (runs in the embedder's thread)."""
        return self.embedder.embed(queries), [guards.signature(q).key for q in queries]

    async def lookup(self, query: str, scope: Scope, threshold: float | None = None) -> LookupResult:
        """The best safe cached answer for ``query`` in ``scope``, or a miss.

        Raises:
            Unavailable: the storage cannot be reached.
        """
        started = time.perf_counter()
        self.storage.check_available()
        vectors, keys = await self._embed.run(self._prepare, [query])
        embedded = time.perf_counter()
        limit = self.threshold if threshold is None else threshold
        best, candidates = await self._search.run(
            self.index.search, (scope, keys[0]), vectors[0], self.settings.candidates, limit, now_ms()
        )
        hit: Entry | None = None
        stale: list[str] = []
        for candidate_id, score in candidates[:_MAX_READS]:
            entry = await self.storage.get(candidate_id)
            if entry is None:
                stale.append(candidate_id)
                continue
            hit, best = entry, score
            break
        if stale:
            await self._search.run(self.index.remove, stale)
        finished = time.perf_counter()
        if hit is None:
            self._misses += 1
        else:
            self._hits += 1
        self._latencies.append((finished - started) * 1000)
        return LookupResult(hit, float(best), int((embedded - started) * 1e6), int((finished - embedded) * 1e6))

    # --- writes ---------------------------------------------------------------------------

    async def store(self, items: Sequence[StoreItem]) -> list[StoreOutcome]:
        """Store question/answer pairs; each is stored or refused (personal data, not cacheable).

        Raises:
            Unavailable: the storage cannot be reached (nothing of this call was stored then).
        """
        outcomes: list[StoreOutcome | None] = []
        accepted: list[StoreItem] = []
        for item in items:
            reason = guards.refusal(item.query, item.answer, item.metadata, self.settings.allowed_contacts)
            outcomes.append(StoreOutcome(refusal=reason) if reason else None)
            if reason is None:
                accepted.append(item)
        if not accepted:
            return [o for o in outcomes if o is not None]
        self.storage.check_available()
        vectors, keys = await self._embed.run(self._prepare, [item.query for item in accepted])
        now = now_ms()
        entries = [
            Entry(
                id=entry_id(item.query, item.scope),
                query=item.query,
                answer=item.answer,
                scope=item.scope,
                metadata=dict(item.metadata),
                created_ms=now,
                updated_ms=now,
                expires_ms=now + item.ttl_s * 1000,
                vector=vectors[row].tobytes(),
                embedder=self.embedder.name,
            )
            for row, item in enumerate(accepted)
        ]
        created = await self.storage.put(entries)
        await self._index_entries(entries, vectors, keys)
        if len(self.index) > self.settings.max_entries:
            await self._remove_local(await self.storage.evict(self.settings.max_entries))
            excess = len(self.index) - self.settings.max_entries
            if excess > 0:  # entries the storage no longer had
                await self._remove_local(await self._search.run(self.index.oldest, excess))
        stored = iter(zip(entries, created, strict=True))
        result: list[StoreOutcome] = []
        for outcome in outcomes:
            if outcome is None:
                entry, new = next(stored)
                outcome = StoreOutcome(entry_id=entry.id, created=new)
            result.append(outcome)
        return result

    async def store_one(self, item: StoreItem) -> StoreOutcome:
        """Store one pair.

        Raises:
            FailedPrecondition: the pair holds personal or account-specific data, or is not cacheable.
        """
        (outcome,) = await self.store([item])
        if outcome.refusal is not None:
            raise FailedPrecondition(
                f"not cached: {outcome.refusal}; personal or account-specific answers are never stored"
            )
        return outcome

    async def bulk_load(self, entries: Sequence[Entry], vectors: Vectors, signature_key: str) -> None:
        """Insert entries with ready-made vectors, all in the partition of ``signature_key``.

        Skips the safety rules and the embedder: for benchmarks that need 100k entries quickly.
        """
        await self.storage.put(entries)
        await self._index_entries(entries, vectors, [signature_key] * len(entries))

    async def invalidate_id(self, entry_id_: str) -> int:
        """Remove one entry by id; returns 1 when it existed, else 0."""
        removed = await self.storage.delete([entry_id_])
        await self._remove_local([entry_id_])
        return removed

    async def invalidate_scope(self, scope: Scope) -> int:
        """Remove every entry of ``scope``; returns how many existed."""
        removed = await self.storage.delete_scope(scope)
        await self._search.run(self.index.remove_scope, scope)
        return len(removed)

    async def invalidate_query(self, query: str, scope: Scope, threshold: float | None = None) -> int:
        """Remove every entry of ``scope`` that a lookup of ``query`` would hit (at most 1024)."""
        self.storage.check_available()
        vectors, keys = await self._embed.run(self._prepare, [query])
        limit = self.threshold if threshold is None else threshold
        _, matches = await self._search.run(
            self.index.search, (scope, keys[0]), vectors[0], QUERY_MATCH_LIMIT, limit, now_ms()
        )
        ids = [candidate for candidate, _ in matches]
        removed = await self.storage.delete(ids)
        await self._remove_local(ids)
        return removed

    async def clear(self, scope: Scope | None = None) -> int:
        """Remove every entry, or every entry of ``scope``; returns how many there were."""
        if scope is not None:
            return await self.invalidate_scope(scope)
        removed = await self.storage.clear()
        await self._search.run(self.index.clear)
        return removed

    def stats(self) -> Stats:
        """Counters and latency percentiles of this replica."""
        total = self._hits + self._misses
        if self._latencies:
            p50, p99 = (float(v) for v in np.percentile(np.fromiter(self._latencies, dtype=np.float64), [50, 99]))
        else:
            p50 = p99 = 0.0
        return Stats(
            entries=len(self.index),
            hits=self._hits,
            misses=self._misses,
            hit_ratio=self._hits / total if total else 0.0,
            lookup_p50_ms=p50,
            lookup_p99_ms=p99,
            memory_bytes=self.index.memory_bytes() + self.storage.memory_bytes(),
            embedder=self.embedder.name,
            index_type=self.settings.index_type,
            storage=self.storage.name,
        )

    # --- keeping the index in step --------------------------------------------------------

    async def _vectors_of(self, entries: Sequence[Entry]) -> tuple[Vectors, list[str]]:
        """Stored embeddings where this replica's embedder made them, fresh ones otherwise."""
        keys = [guards.signature(e.query).key for e in entries]
        vectors = np.zeros((len(entries), self.embedder.dim), dtype=np.float32)
        redo: list[int] = []
        for row, entry in enumerate(entries):
            if entry.embedder == self.embedder.name and len(entry.vector) == self.embedder.dim * 4:
                vectors[row] = np.frombuffer(entry.vector, dtype=np.float32)
            else:
                redo.append(row)
        if redo:
            fresh = await self._embed.run(self.embedder.embed, [entries[row].query for row in redo])
            vectors[redo] = fresh
        return vectors, keys

    async def _apply_upserts(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        vectors, keys = await self._vectors_of(entries)
        await self._index_entries(entries, vectors, keys)

    async def _index_entries(self, entries: Sequence[Entry], vectors: Vectors, keys: Sequence[str]) -> None:
        await self._search.run(
            self.index.upsert,
            [e.id for e in entries],
            [(e.scope, key) for e, key in zip(entries, keys, strict=True)],
            vectors,
            [e.expires_ms for e in entries],
        )

    async def _remove_local(self, ids: Sequence[str]) -> None:
        if ids:
            await self._search.run(self.index.remove, ids)
            await self._start_rebuilds()

    async def _start_rebuilds(self) -> None:
        for job in await self._search.run(self.index.rebuild_jobs):
            self._spawn(self._run_rebuild(job))

    async def _run_rebuild(self, job: RebuildJob) -> None:
        started = time.perf_counter()
        try:
            built = await self._rebuild.run(self.index.build, job)
        except Exception:
            log.exception("hnsw rebuild failed; keeping the index with its tombstones")
            await self._search.run(self.index.finish_rebuild, job, None)
            return
        swapped = await self._search.run(self.index.finish_rebuild, job, built)
        log.info(
            "hnsw partition rebuilt",
            extra={"entries": len(job.labels), "seconds": round(time.perf_counter() - started, 2), "swapped": swapped},
        )

    async def reconcile(self) -> None:
        """Make the index match the storage: drop what it lacks, add what is missing, fix expiries."""
        stored = await self.storage.expiries()
        local = await self._search.run(self.index.expiries)
        gone = [i for i in local if i not in stored]
        missing = [i for i in stored if i not in local]
        for entry_id_, expires in stored.items():
            if entry_id_ in local and local[entry_id_] != expires:
                await self._search.run(self.index.set_expiry, entry_id_, expires)
        await self._remove_local(gone)
        for start in range(0, len(missing), 2000):
            await self._apply_upserts(await self.storage.get_many(missing[start : start + 2000]))
        if gone or missing:
            log.info("index reconciled with storage", extra={"removed": len(gone), "added": len(missing)})

    async def _follow_changes(self) -> None:
        async for change in self.storage.changes():
            try:
                if isinstance(change, Upserted):
                    await self._apply_upserts(change.entries)
                elif isinstance(change, Deleted):
                    await self._remove_local(change.ids)
                elif isinstance(change, Cleared):
                    await self._search.run(self.index.clear)
                elif isinstance(change, Resync):
                    await self.reconcile()
            except MeshError as exc:
                log.warning("could not apply a change from another replica", extra={"error": exc.message})

    async def _housekeeping(self) -> None:
        """Sweep expired entries every ``sweep_interval_s``; reconcile every ``resync_interval_s``."""
        interval = max(self.settings.sweep_interval_s, 0.05)
        last_reconcile = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                now = now_ms()
                await self._remove_local(await self._search.run(self.index.expired, now))
                await self.storage.sweep(now)
                resync = self.settings.resync_interval_s
                if resync > 0 and time.monotonic() - last_reconcile >= resync:
                    last_reconcile = time.monotonic()
                    await self.reconcile()
            except MeshError as exc:
                log.debug("housekeeping skipped", extra={"error": exc.message})
