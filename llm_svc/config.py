"""Settings of llm_svc: every field is read from ``VOICEBOT_LLM_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class LlmSettings(ServiceSettings):
    """Settings of llm_svc."""

    service: ClassVar[str] = "llm"
    port: int = setting(50054, "gRPC port; 0 picks a free port.")
