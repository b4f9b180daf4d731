"""Wires cache_svc's embedder, storage, index and servicer into the mesh runtime."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cache_svc import engines, storage
from cache_svc.cache import SemanticCache
from cache_svc.config import INDEX_TYPES, CacheSettings
from cache_svc.servicer import CacheServicer
from mesh.server import HealthControl, Registrar, ServicerApp
from mesh.settings import SettingsError
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc

ADMIN_METHODS = frozenset(
    {
        "/voicebot.v1.CacheService/Invalidate",
        "/voicebot.v1.CacheService/Clear",
        "/voicebot.v1.CacheService/Warm",
    }
)


def check_settings(settings: CacheSettings) -> None:
    """Reject settings outside their documented ranges.

    Raises:
        SettingsError: naming the variable and its range.
    """
    name = CacheSettings.env_name
    if settings.index_type not in INDEX_TYPES:
        raise SettingsError(f"{name('index_type')}={settings.index_type!r} is not one of {', '.join(INDEX_TYPES)}")
    ranges: list[tuple[str, float, float, float]] = [
        ("hnsw_m", settings.hnsw_m, 4, 128),
        ("hnsw_ef_search", settings.hnsw_ef_search, 16, 1024),
        ("hnsw_ef_construction", settings.hnsw_ef_construction, 16, 1024),
        ("hnsw_rebuild_ratio", settings.hnsw_rebuild_ratio, 0.01, 10),
        ("default_ttl_s", settings.default_ttl_s, 1, 2_592_000),
        ("max_entries", settings.max_entries, 1, 100_000_000),
        ("candidates", settings.candidates, 1, 64),
        ("embed_workers", settings.embed_workers, 1, 16),
        ("torch_threads", settings.torch_threads, 1, 64),
        ("faiss_build_threads", settings.faiss_build_threads, 0, 256),
        ("max_pending", settings.max_pending, 1, 1_000_000),
        ("redis_timeout_s", settings.redis_timeout_s, 0.01, 60),
        ("sweep_interval_s", settings.sweep_interval_s, 0.05, 86_400),
        ("resync_interval_s", settings.resync_interval_s, 0, 86_400),
        ("stream_maxlen", settings.stream_maxlen, 100, 10_000_000),
        ("latency_window", settings.latency_window, 1, 1_000_000),
    ]
    if settings.threshold is not None:
        ranges.append(("threshold", settings.threshold, 0.0, 1.0))
    for field, value, low, high in ranges:
        if not low <= value <= high:
            raise SettingsError(f"{name(field)}={value} is out of range {low}-{high}")


class CacheApp(ServicerApp):
    """CacheService: the semantic cache on the configured embedder, index and storage.

    ``start`` loads the embedder and rebuilds this replica's index from the storage; health is
    NOT_SERVING until it returns.
    """

    name = "cache"
    admin_methods = ADMIN_METHODS

    def __init__(self, settings: CacheSettings) -> None:
        """Build the parts; nothing loads or connects until ``start``."""
        check_settings(settings)
        self.settings = settings
        self.replica_id = uuid.uuid4().hex[:12]
        embedder = engines.build(settings)
        self.engine_name = embedder.name
        self.cache = SemanticCache(settings, embedder, storage.build(settings, self.replica_id))

    def servicers(self) -> Sequence[Registrar]:
        """The CacheService servicer."""
        return [
            (
                cache_service_pb2_grpc.add_CacheServiceServicer_to_server,
                CacheServicer(self.cache, self.settings),
                cache_service_pb2.DESCRIPTOR.services_by_name["CacheService"],
            )
        ]

    async def start(self, health: HealthControl) -> None:
        """Load the embedder and rebuild the index from the storage."""
        await self.cache.start()

    async def stop(self) -> None:
        """Stop background work and disconnect."""
        await self.cache.stop()
