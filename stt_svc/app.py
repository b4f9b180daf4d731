"""Wires stt_svc's engine and servicer into the mesh runtime."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mesh.server import HealthControl, Registrar, ServicerApp
from mesh.settings import SettingsError
from stt_svc.config import ENGINES, SttSettings
from stt_svc.engine import SttEngine
from stt_svc.servicer import SttServicer
from voicebot.v1 import stt_service_pb2, stt_service_pb2_grpc

log = logging.getLogger("stt_svc")


def build_engine(settings: SttSettings) -> SttEngine:
    """The engine ``settings.engine`` names; nothing loads yet.

    Raises:
        SettingsError: an unknown engine name.
    """
    if settings.engine == "faster_whisper":
        from stt_svc.engines.faster_whisper import FasterWhisperEngine

        return FasterWhisperEngine(settings)
    if settings.engine == "timed":
        from stt_svc.engines.timed import TimedEngine

        return TimedEngine(settings)
    raise SettingsError(f"VOICEBOT_STT_ENGINE={settings.engine!r}: choose one of {', '.join(ENGINES)}")


class SttApp(ServicerApp):
    """SttService on the configured engine; SERVING once the model has loaded and decoded once."""

    name = "stt"

    def __init__(self, settings: SttSettings, engine: SttEngine | None = None) -> None:
        """Build the engine and servicer; the model loads in ``start``."""
        self.settings = settings
        self.engine = engine or build_engine(settings)
        self.engine_name = self.engine.name
        self.servicer = SttServicer(self.engine, settings)

    def servicers(self) -> Sequence[Registrar]:
        """The SttService servicer."""
        return [
            (
                stt_service_pb2_grpc.add_SttServiceServicer_to_server,
                self.servicer,
                stt_service_pb2.DESCRIPTOR.services_by_name["SttService"],
            )
        ]

    async def start(self, health: HealthControl) -> None:
        """Load the model and VAD and warm them up; streams are refused with UNAVAILABLE until then."""
        await self.engine.start()
        self.servicer.ready = True
        log.info("engine warmed up", extra={"engine": self.engine.name, "languages": len(self.engine.languages)})

    async def stop(self) -> None:
        """Refuse new streams and release the engine."""
        self.servicer.ready = False
        await self.engine.stop()
