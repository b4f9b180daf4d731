"""Settings of cache_svc: every field is read from ``VOICEBOT_CACHE_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class CacheSettings(ServiceSettings):
    """Settings of cache_svc."""

    service: ClassVar[str] = "cache"
    port: int = setting(50055, "gRPC port; 0 picks a free port.")
