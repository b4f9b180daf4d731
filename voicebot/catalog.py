"""The six services of the mesh: one name per service everywhere."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceInfo:
    """How one service is named and reached.

    ``name`` is the compose service, Helm key and env infix (``VOICEBOT_STT_*``); ``package``
    the Python package run with ``python -m``; ``grpc_service`` the full proto service name.
    """

    name: str
    package: str
    grpc_service: str
    default_port: int

    @property
    def env_prefix(self) -> str:
        """Prefix of this service's environment variables, e.g. ``VOICEBOT_STT_``."""
        return f"VOICEBOT_{self.name.upper()}_"


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("orchestrator", "orchestrator", "voicebot.v1.OrchestratorService", 50051),
    ServiceInfo("stt", "stt_svc", "voicebot.v1.SttService", 50052),
    ServiceInfo("tts", "tts_svc", "voicebot.v1.TtsService", 50053),
    ServiceInfo("llm", "llm_svc", "voicebot.v1.LlmService", 50054),
    ServiceInfo("cache", "cache_svc", "voicebot.v1.CacheService", 50055),
    ServiceInfo("analytics", "analytics_svc", "voicebot.v1.AnalyticsService", 50056),
)

BY_NAME: dict[str, ServiceInfo] = {s.name: s for s in SERVICES}
