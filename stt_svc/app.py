"""Wires stt_svc's servicer into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from mesh.server import Registrar, ServicerApp
from stt_svc.config import SttSettings
from voicebot.v1 import stt_service_pb2, stt_service_pb2_grpc


class SttApp(ServicerApp):
    """SttService: every RPC answers UNIMPLEMENTED until its engine lands."""

    name = "stt"
    engine_name = "none"

    def __init__(self, settings: SttSettings) -> None:
        """Hold the settings; nothing loads until ``start``."""
        self.settings = settings

    def servicers(self) -> Sequence[Registrar]:
        """The SttService servicer."""
        return [
            (
                stt_service_pb2_grpc.add_SttServiceServicer_to_server,
                stt_service_pb2_grpc.SttServiceServicer(),  # type: ignore[abstract]
                stt_service_pb2.DESCRIPTOR.services_by_name["SttService"],
            )
        ]
