"""Wires tts_svc's servicer into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from mesh.server import Registrar, ServicerApp
from tts_svc.config import TtsSettings
from voicebot.v1 import tts_service_pb2, tts_service_pb2_grpc


class TtsApp(ServicerApp):
    """TtsService: every RPC answers UNIMPLEMENTED until its engine lands."""

    name = "tts"
    engine_name = "none"

    def __init__(self, settings: TtsSettings) -> None:
        """Hold the settings; nothing loads until ``start``."""
        self.settings = settings

    def servicers(self) -> Sequence[Registrar]:
        """The TtsService servicer."""
        return [
            (
                tts_service_pb2_grpc.add_TtsServiceServicer_to_server,
                tts_service_pb2_grpc.TtsServiceServicer(),  # type: ignore[abstract]
                tts_service_pb2.DESCRIPTOR.services_by_name["TtsService"],
            )
        ]
