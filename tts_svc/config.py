"""Settings of tts_svc: every field is read from ``VOICEBOT_TTS_<FIELD>``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mesh.settings import ServiceSettings, setting


@dataclass(frozen=True)
class TtsSettings(ServiceSettings):
    """Settings of tts_svc."""

    service: ClassVar[str] = "tts"
    port: int = setting(50053, "gRPC port; 0 picks a free port.")
