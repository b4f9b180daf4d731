"""The partitioned faiss index and the hashing embedder, without gRPC."""

from __future__ import annotations

import numpy as np
import pytest

from cache_svc.engine import Scope
from cache_svc.engines.hashing import HashingEmbedder
from cache_svc.index import MIN_TOMBSTONES, VectorIndex

DIM = 32
FAR_FUTURE = 2**62
KEY = (Scope("t", "en", "faq"), "sig")


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def filled(kind: str, n: int = 100) -> tuple[VectorIndex, np.ndarray]:
    index = VectorIndex(DIM, kind, hnsw_m=8, ef_search=32, ef_construction=32)
    vectors = unit_vectors(n)
    created = index.upsert([f"e{i}" for i in range(n)], [KEY] * n, vectors, [FAR_FUTURE] * n)
    assert all(created)
    return index, vectors


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_finds_the_vector_itself(kind: str) -> None:
    index, vectors = filled(kind)
    best, hits = index.search(KEY, vectors[7], 3, 0.99, 0)
    assert hits[0][0] == "e7"
    assert best == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_upsert_again_refreshes_expiry_only(kind: str) -> None:
    index, vectors = filled(kind, 10)
    assert index.upsert(["e3"], [KEY], vectors[3:4], [123]) == [False]
    assert len(index) == 10
    assert index.expires_ms("e3") == 123
    assert index.expired(200) == ["e3"]
    # An expired entry is never a candidate.
    assert index.search(KEY, vectors[3], 1, 0.99, 200)[1] == []


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_partitions_do_not_see_each_other(kind: str) -> None:
    index, vectors = filled(kind, 10)
    other = (Scope("t", "en", "faq"), "other-signature")
    assert index.search(other, vectors[1], 3, 0.0, 0) == (0.0, [])
    index.upsert(["x"], [other], vectors[1:2], [FAR_FUTURE])
    assert [i for i, _ in index.search(other, vectors[1], 3, 0.0, 0)[1]] == ["x"]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_remove_and_remove_scope(kind: str) -> None:
    index, vectors = filled(kind, 20)
    assert index.remove(["e5", "nope"]) == ["e5"]
    assert all(i != "e5" for i, _ in index.search(KEY, vectors[5], 20, 0.0, 0)[1])
    other_scope = (Scope("u", "en", "faq"), "sig")
    index.upsert(["y"], [other_scope], vectors[0:1], [FAR_FUTURE])
    assert sorted(index.remove_scope(Scope("t", "en", "faq"))) == sorted(f"e{i}" for i in range(20) if i != 5)
    assert len(index) == 1
    assert index.clear() == 1
    assert len(index) == 0


def test_flat_removes_vectors_at_once() -> None:
    index, _ = filled("flat", 10)
    index.remove(["e1", "e2"])
    assert index.tombstones() == 0
    assert index.rebuild_jobs() == []


def test_hnsw_tombstones_trigger_a_rebuild_that_keeps_concurrent_adds() -> None:
    n = 200
    index, vectors = filled("hnsw", n)
    dead = [f"e{i}" for i in range(MIN_TOMBSTONES + 10)]
    index.remove(dead)
    assert index.tombstones() == len(dead)
    for i in range(MIN_TOMBSTONES + 10):
        assert all(hit != f"e{i}" for hit, _ in index.search(KEY, vectors[i], 5, 0.0, 0)[1])
    jobs = index.rebuild_jobs()
    assert len(jobs) == 1
    assert len(jobs[0].labels) == n - len(dead)
    assert index.rebuild_jobs() == []  # one rebuild per partition at a time
    built = index.build(jobs[0])
    # While the rebuild ran: one entry added, one more removed.
    extra = unit_vectors(1, seed=9)
    index.upsert(["late"], [KEY], extra, [FAR_FUTURE])
    index.remove(["e199"])
    assert index.finish_rebuild(jobs[0], built)
    assert index.tombstones() == 1  # e199 died after the snapshot
    assert index.search(KEY, extra[0], 1, 0.99, 0)[1][0][0] == "late"
    assert all(hit != "e199" for hit, _ in index.search(KEY, vectors[199], 5, 0.0, 0)[1])
    assert index.search(KEY, vectors[150], 1, 0.99, 0)[1][0][0] == "e150"


def test_rebuild_of_a_vanished_partition_is_dropped() -> None:
    index, _ = filled("hnsw", 100)
    index.remove([f"e{i}" for i in range(50)])
    (job,) = index.rebuild_jobs()
    built = index.build(job)
    index.remove_scope(KEY[0])
    assert not index.finish_rebuild(job, built)
    assert len(index) == 0


def test_memory_grows_with_entries() -> None:
    small, _ = filled("flat", 10)
    large, _ = filled("flat", 100)
    assert large.memory_bytes() > small.memory_bytes() > 0


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder()
    a = embedder.embed(["What are your opening hours?", "", "?"])
    b = HashingEmbedder().embed(["What are your opening hours?", "", "?"])
    assert a.shape == (3, 384)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.linalg.norm(a[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(a[1]) == 0.0


def test_hashing_embedder_ranks_rewordings_above_other_questions() -> None:
    embedder = HashingEmbedder()
    base, reworded, typo, other = embedder.embed(
        [
            "How do I reset my online banking password?",
            "I forgot my online banking password, how can I reset it?",
            "How do I reset my online banking pasword?",
            "What is the interest rate on savings accounts?",
        ]
    )
    assert float(base @ reworded) > 0.6
    assert float(base @ typo) > 0.6
    assert float(base @ other) < 0.3
