"""Entry storages of cache_svc: process memory (the default) and Redis (shared by replicas)."""

from __future__ import annotations

from cache_svc.config import STORAGES, CacheSettings
from cache_svc.engine import Storage
from mesh.settings import SettingsError


def build(settings: CacheSettings, replica_id: str) -> Storage:
    """The storage ``settings.storage`` names (not connected yet).

    Raises:
        SettingsError: an unknown storage name.
    """
    if settings.storage == "memory":
        from cache_svc.storage.memory_store import MemoryStorage

        return MemoryStorage()
    if settings.storage == "redis":
        from cache_svc.storage.redis_store import RedisStorage

        return RedisStorage(
            settings.redis_url,
            prefix=settings.redis_prefix,
            timeout_s=settings.redis_timeout_s,
            stream_maxlen=settings.stream_maxlen,
            replica_id=replica_id,
        )
    raise SettingsError(f"VOICEBOT_CACHE_STORAGE={settings.storage!r} is not one of {', '.join(STORAGES)}")
