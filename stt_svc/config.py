"""Settings of stt_svc: every field is read from ``VOICEBOT_STT_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class SttSettings(ServiceSettings):
    """Settings of stt_svc."""

    service: ClassVar[str] = "stt"
    port: int = setting(50052, "gRPC port; 0 picks a free port.")
