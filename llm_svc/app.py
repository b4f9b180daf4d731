"""Wires llm_svc's servicer into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from llm_svc.config import LlmSettings
from mesh.server import Registrar, ServicerApp
from voicebot.v1 import llm_service_pb2, llm_service_pb2_grpc


class LlmApp(ServicerApp):
    """LlmService: every RPC answers UNIMPLEMENTED until its engine lands."""

    name = "llm"
    engine_name = "none"

    def __init__(self, settings: LlmSettings) -> None:
        """Hold the settings; nothing loads until ``start``."""
        self.settings = settings

    def servicers(self) -> Sequence[Registrar]:
        """The LlmService servicer."""
        return [
            (
                llm_service_pb2_grpc.add_LlmServiceServicer_to_server,
                llm_service_pb2_grpc.LlmServiceServicer(),  # type: ignore[abstract]
                llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"],
            )
        ]
