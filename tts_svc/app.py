"""Wires tts_svc's servicer and engine into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from mesh.server import HealthControl, Registrar, ServicerApp
from mesh.settings import SettingsError
from tts_svc.config import ENGINES, TtsSettings
from tts_svc.engine import TtsEngine
from tts_svc.servicer import CHUNK_MS_RANGE, TtsServicer
from tts_svc.stream import Synthesizer
from voicebot.v1 import tts_service_pb2, tts_service_pb2_grpc


def build_engine(settings: TtsSettings) -> TtsEngine:
    """The engine ``settings.engine`` names, not yet loaded.

    Raises:
        SettingsError: an unknown engine or out-of-range setting.
    """
    if settings.workers < 1 or settings.max_pending < settings.workers:
        raise SettingsError(
            f"VOICEBOT_TTS_WORKERS must be >= 1 and VOICEBOT_TTS_MAX_PENDING >= it; "
            f"got {settings.workers} and {settings.max_pending}"
        )
    if settings.engine == "piper":
        from tts_svc.engines.piper import PiperEngine

        return PiperEngine(settings)
    if settings.engine == "kokoro":
        from tts_svc.engines.kokoro import KokoroEngine

        return KokoroEngine(settings)
    if settings.engine == "timed":
        from tts_svc.engines.timed import TimedEngine

        return TimedEngine(settings)
    raise SettingsError(f"VOICEBOT_TTS_ENGINE={settings.engine!r}: expected one of {', '.join(ENGINES)}")


class TtsApp(ServicerApp):
    """TtsService on the engine the settings pick; SERVING once a warm-up sentence was spoken."""

    name = "tts"

    def __init__(self, settings: TtsSettings) -> None:
        """Build (not load) the engine.

        Raises:
            SettingsError: an unknown engine or out-of-range setting.
        """
        low, high = CHUNK_MS_RANGE
        if not low <= settings.default_max_chunk_ms <= high:
            raise SettingsError(
                f"VOICEBOT_TTS_DEFAULT_MAX_CHUNK_MS must be {low}-{high}; got {settings.default_max_chunk_ms}"
            )
        if not 1 <= settings.max_streams <= settings.max_pending - settings.workers:
            raise SettingsError(
                f"VOICEBOT_TTS_MAX_STREAMS must be 1..VOICEBOT_TTS_MAX_PENDING - VOICEBOT_TTS_WORKERS "
                f"({settings.max_pending - settings.workers}), so that no stream is refused part-way; "
                f"got {settings.max_streams}"
            )
        self.settings = settings
        self.engine = build_engine(settings)
        self.engine_name = self.engine.name
        self.synthesizer = Synthesizer(
            self.engine, settings.max_streams, first_clause_alone=settings.first_clause_alone, workers=settings.workers
        )
        self.servicer = TtsServicer(self.engine, self.synthesizer, settings.default_max_chunk_ms)

    def servicers(self) -> Sequence[Registrar]:
        """The TtsService servicer."""
        return [
            (
                tts_service_pb2_grpc.add_TtsServiceServicer_to_server,
                self.servicer,
                tts_service_pb2.DESCRIPTOR.services_by_name["TtsService"],
            )
        ]

    async def start(self, health: HealthControl) -> None:
        """Load the engine and speak a warm-up sentence; health stays NOT_SERVING until then."""
        await self.engine.start()
        await self.synthesizer.calibrate(self.engine.voices[0])
        if self.settings.voice and self.settings.voice not in {v.name for v in self.engine.voices}:
            known = ", ".join(v.name for v in self.engine.voices)
            raise SettingsError(f"VOICEBOT_TTS_VOICE={self.settings.voice!r} is not a voice of this engine: {known}")
        self.servicer.ready = True

    async def stop(self) -> None:
        """Refuse new streams and release the engine."""
        self.servicer.ready = False
        await self.engine.stop()
