"""The per-replica vector index: faiss, partitioned by scope and safety signature.

Every (scope, :class:`cache_svc.guards.Signature` key) pair has its own faiss index wrapped in
``IndexIDMap``, so a lookup searches only entries it may hit. Entry ids (strings) map to int64
faiss labels here.

* ``flat``: ``IndexFlatIP``, exact; deletions remove vectors at once (``remove_ids``).
* ``hnsw``: ``IndexHNSWFlat`` (inner product), approximate; HNSW cannot delete, so a removed
  entry becomes a tombstone that searches skip (an ``IDSelectorNot`` over the dead labels).
  When a partition's tombstones exceed ``rebuild_ratio`` of its live entries (and at least 32),
  :meth:`VectorIndex.rebuild_jobs` snapshots its live vectors; :meth:`VectorIndex.build` builds a
  fresh index from the snapshot in another thread while searches go on against the old one; and
  :meth:`VectorIndex.finish_rebuild` replays the entries added meanwhile and swaps it in.

Not thread-safe: every method except :meth:`VectorIndex.build` must run on one thread (the
cache runs them in a one-worker ``WorkerBridge``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from cache_svc.engine import Scope, Vectors

# faiss's SWIG bindings are only partly typed; treat them as dynamic.
faiss: Any = _faiss

PartitionKey = tuple[Scope, str]
Labels = npt.NDArray[np.int64]

MIN_TOMBSTONES = 32
# Batches at least this big are added with ``build_threads`` OpenMP threads; all else uses one.
BULK_ROWS = 1024


def search_threads_one() -> None:
    """Make this thread's faiss calls single-threaded.

    One query gains nothing from OpenMP, and on busy cores its thread start-up and spinning
    cost milliseconds (flat search of 10k: 0.6 ms with one thread, 1.6 ms p50 and 49 ms p99 with
    two, on two busy cores). OpenMP keeps the setting per calling thread.
    """
    faiss.omp_set_num_threads(1)


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` OpenMP threads (0: every core), then go back to one."""
    faiss.omp_set_num_threads(count or os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(1)


# Rough Python-side cost of one entry's bookkeeping (dict slots, tuples, id strings), in bytes.
_REF_BYTES = 260


@dataclass
class _Ref:
    label: int
    key: PartitionKey
    expires_ms: int


@dataclass
class _Partition:
    index: Any
    live: dict[int, str] = field(default_factory=dict)
    dead: set[int] = field(default_factory=set)
    # While a background rebuild runs: what was added since the snapshot, to replay on the new index.
    log: list[tuple[Labels, Vectors]] | None = None
    _selector: Any = None

    def params(self, kind: str, ef_search: int, k: int) -> Any:
        if kind != "hnsw":
            return None
        if self.dead and self._selector is None:
            batch = faiss.IDSelectorBatch(np.fromiter(self.dead, dtype=np.int64, count=len(self.dead)))
            self._selector = (faiss.IDSelectorNot(batch), batch)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef_search, k)
        if self.dead:
            params.sel = self._selector[0]
        return params

    def kill(self, label: int) -> None:
        self.dead.add(label)
        self._selector = None


@dataclass(frozen=True)
class RebuildJob:
    """A snapshot of one partition's live entries, to build a fresh HNSW index from."""

    key: PartitionKey
    partition: object
    labels: Labels
    vectors: Vectors


class VectorIndex:
    """Partitioned faiss index with string ids, expiry times and HNSW tombstones."""

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        *,
        hnsw_m: int = 32,
        ef_search: int = 64,
        ef_construction: int = 40,
        rebuild_ratio: float = 0.2,
        build_threads: int = 0,
    ) -> None:
        """An empty index of ``dim``-dimensional unit vectors; ``kind`` is "flat" or "hnsw".

        ``build_threads`` OpenMP threads (0: every core) add large batches and rebuild HNSW
        partitions; everything else runs on one thread (see :func:`search_threads_one`).
        """
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"index kind {kind!r} is not 'flat' or 'hnsw'")
        self.dim = dim
        self.kind = kind
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.rebuild_ratio = rebuild_ratio
        self.build_threads = build_threads
        self._refs: dict[str, _Ref] = {}
        self._parts: dict[PartitionKey, _Partition] = {}
        self._labels = itertools.count(1)

    def __len__(self) -> int:
        """Entries in the index (live, expired or not)."""
        return len(self._refs)

    def __contains__(self, entry_id: object) -> bool:
        """True when ``entry_id`` is in the index."""
        return entry_id in self._refs

    def new_faiss(self) -> Any:
        """An empty faiss index of this kind, wrapped in ``IndexIDMap``."""
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap(inner)

    def upsert(
        self, ids: Sequence[str], keys: Sequence[PartitionKey], vectors: Vectors, expires_ms: Sequence[int]
    ) -> list[bool]:
        """Add entries, or refresh the expiry of those already here; per entry, True when added.

        ``vectors`` has one row per id. An id that moved to another partition is moved.
        """
        created: list[bool] = []
        adds: dict[PartitionKey, list[int]] = {}
        add_labels: dict[PartitionKey, list[int]] = {}
        for row, (entry_id, key, expires) in enumerate(zip(ids, keys, expires_ms, strict=True)):
            ref = self._refs.get(entry_id)
            if ref is not None and ref.key == key:
                ref.expires_ms = expires
                created.append(False)
                continue
            if ref is not None:
                self.remove([entry_id])
            label = next(self._labels)
            self._refs[entry_id] = _Ref(label, key, expires)
            adds.setdefault(key, []).append(row)
            add_labels.setdefault(key, []).append(label)
            created.append(ref is None)
        for key, rows in adds.items():
            part = self._parts.get(key)
            if part is None:
                part = self._parts[key] = _Partition(self.new_faiss())
            labels = np.asarray(add_labels[key], dtype=np.int64)
            batch = np.ascontiguousarray(vectors[rows], dtype=np.float32)
            with _threads(self.build_threads) if len(rows) >= BULK_ROWS else contextlib.nullcontext():
                part.index.add_with_ids(batch, labels)
            for label, row in zip(add_labels[key], rows, strict=True):
                part.live[label] = ids[row]
            if part.log is not None:
                part.log.append((labels, batch))
        return created

    def remove(self, ids: Iterable[str]) -> list[str]:
        """Remove entries; returns the ids that were here."""
        removed: list[str] = []
        physical: dict[PartitionKey, list[int]] = {}
        touched: set[PartitionKey] = set()
        for entry_id in ids:
            ref = self._refs.pop(entry_id, None)
            if ref is None:
                continue
            removed.append(entry_id)
            touched.add(ref.key)
            part = self._parts[ref.key]
            del part.live[ref.label]
            if self.kind == "hnsw":
                part.kill(ref.label)
            else:
                physical.setdefault(ref.key, []).append(ref.label)
        for key, labels in physical.items():
            self._parts[key].index.remove_ids(np.asarray(labels, dtype=np.int64))
        for key in touched:
            part = self._parts[key]
            if not part.live and part.log is None:
                del self._parts[key]
        return removed

    def remove_scope(self, scope: Scope) -> list[str]:
        """Remove every entry of ``scope``; returns their ids."""
        keys = [key for key in self._parts if key[0] == scope]
        removed: list[str] = []
        for key in keys:
            part = self._parts.pop(key)
            for entry_id in part.live.values():
                self._refs.pop(entry_id, None)
                removed.append(entry_id)
        return removed

    def clear(self) -> int:
        """Remove everything; returns how many entries there were."""
        count = len(self._refs)
        self._refs.clear()
        self._parts.clear()
        return count

    def search(
        self, key: PartitionKey, vector: Vectors, k: int, threshold: float, now_ms: int
    ) -> tuple[float, list[tuple[str, float]]]:
        """Nearest live, unexpired entries of partition ``key`` to ``vector`` (shape ``(dim,)`` or ``(1, dim)``).

        Returns:
            The best similarity found (0.0 when none), and the ids with similarity at or above
            ``threshold``, best first, at most ``k``.
        """
        part = self._parts.get(key)
        if part is None or not part.live:
            return 0.0, []
        kk = min(k, part.index.ntotal)
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        params = part.params(self.kind, self.ef_search, kk)
        scores, labels = part.index.search(query, kk, params=params)
        best: float | None = None
        hits: list[tuple[str, float]] = []
        for score, label in zip(scores[0].tolist(), labels[0].tolist(), strict=True):
            entry_id = part.live.get(label)
            if entry_id is None or self._refs[entry_id].expires_ms <= now_ms:
                continue
            if best is None:
                best = score
            if score >= threshold:
                hits.append((entry_id, score))
        return (best if best is not None else 0.0), hits

    def expires_ms(self, entry_id: str) -> int | None:
        """Expiry time of ``entry_id``, or None when it is not here."""
        ref = self._refs.get(entry_id)
        return None if ref is None else ref.expires_ms

    def expiries(self) -> dict[str, int]:
        """Id to expiry time of every entry."""
        return {entry_id: ref.expires_ms for entry_id, ref in self._refs.items()}

    def set_expiry(self, entry_id: str, expires_ms: int) -> None:
        """Change an entry's expiry time (a refresh seen by another replica)."""
        ref = self._refs.get(entry_id)
        if ref is not None:
            ref.expires_ms = expires_ms

    def expired(self, now_ms: int) -> list[str]:
        """Ids whose expiry time is at or before ``now_ms``."""
        return [entry_id for entry_id, ref in self._refs.items() if ref.expires_ms <= now_ms]

    def oldest(self, count: int) -> list[str]:
        """The ``count`` ids closest to expiry (eviction order)."""
        return [i for i, _ in sorted(self._refs.items(), key=lambda item: item[1].expires_ms)[:count]]

    def memory_bytes(self) -> int:
        """Approximate bytes held by the faiss indexes and the id bookkeeping."""
        per_vector = self.dim * 4 + 8
        if self.kind == "hnsw":
            per_vector += int(self.hnsw_m * 2 * 4 * 1.1)  # level-0 links plus the few upper levels
        total = sum(int(part.index.ntotal) for part in self._parts.values()) * per_vector
        return total + len(self._refs) * _REF_BYTES

    def tombstones(self) -> int:
        """Dead HNSW entries still in the graphs."""
        return sum(len(part.dead) for part in self._parts.values())

    def rebuild_jobs(self) -> list[RebuildJob]:
        """Snapshots of the HNSW partitions that have too many tombstones (none for flat)."""
        jobs: list[RebuildJob] = []
        if self.kind != "hnsw":
            return jobs
        for key, part in self._parts.items():
            if part.log is not None or len(part.dead) < max(MIN_TOMBSTONES, self.rebuild_ratio * len(part.live)):
                continue
            inner = faiss.downcast_index(part.index.index)
            labels = faiss.vector_to_array(part.index.id_map).astype(np.int64)
            vectors = inner.reconstruct_n(0, inner.ntotal)
            keep = np.fromiter((label in part.live for label in labels.tolist()), dtype=bool, count=len(labels))
            part.log = []
            jobs.append(RebuildJob(key, part, labels[keep], np.ascontiguousarray(vectors[keep])))
        return jobs

    def build(self, job: RebuildJob) -> Any:
        """A fresh faiss index of ``job``'s snapshot. Thread-safe: touches no shared state."""
        index = self.new_faiss()
        if len(job.labels):
            with _threads(self.build_threads):
                index.add_with_ids(job.vectors, job.labels)
        return index

    def finish_rebuild(self, job: RebuildJob, index: Any) -> bool:
        """Replay what was added since the snapshot into ``index`` and swap it in.

        Returns False (and drops ``index``) when the build failed (``index`` is None) or the
        partition was removed or replaced meanwhile.
        """
        part = self._parts.get(job.key)
        if index is None or part is None or part is not job.partition or part.log is None:
            if isinstance(job.partition, _Partition):
                job.partition.log = None
            return False
        present = set(job.labels.tolist())
        for labels, vectors in part.log:
            index.add_with_ids(vectors, labels)
            present.update(labels.tolist())
        part.index = index
        part.dead = present - set(part.live)
        part._selector = None
        part.log = None
        if not part.live:
            del self._parts[job.key]
        return True
