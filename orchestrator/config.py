"""Settings of orchestrator: every field is read from ``VOICEBOT_ORCHESTRATOR_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class OrchestratorSettings(ServiceSettings):
    """Settings of orchestrator."""

    service: ClassVar[str] = "orchestrator"
    port: int = setting(50051, "gRPC port; 0 picks a free port.")
