"""Settings of analytics_svc: every field is read from ``VOICEBOT_ANALYTICS_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class AnalyticsSettings(ServiceSettings):
    """Settings of analytics_svc."""

    service: ClassVar[str] = "analytics"
    port: int = setting(50056, "gRPC port; 0 picks a free port.")
