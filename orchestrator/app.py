"""Wires orchestrator's servicer into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from mesh.server import Registrar, ServicerApp
from orchestrator.config import OrchestratorSettings
from voicebot.v1 import orchestrator_service_pb2, orchestrator_service_pb2_grpc


class OrchestratorApp(ServicerApp):
    """OrchestratorService: every RPC answers UNIMPLEMENTED until its engine lands."""

    name = "orchestrator"
    engine_name = "none"

    def __init__(self, settings: OrchestratorSettings) -> None:
        """Hold the settings; nothing loads until ``start``."""
        self.settings = settings

    def servicers(self) -> Sequence[Registrar]:
        """The OrchestratorService servicer."""
        return [
            (
                orchestrator_service_pb2_grpc.add_OrchestratorServiceServicer_to_server,
                orchestrator_service_pb2_grpc.OrchestratorServiceServicer(),  # type: ignore[abstract]
                orchestrator_service_pb2.DESCRIPTOR.services_by_name["OrchestratorService"],
            )
        ]
