"""Wires analytics_svc's servicer into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from analytics_svc.config import AnalyticsSettings
from mesh.server import Registrar, ServicerApp
from voicebot.v1 import analytics_service_pb2, analytics_service_pb2_grpc


class AnalyticsApp(ServicerApp):
    """AnalyticsService: every RPC answers UNIMPLEMENTED until its engine lands."""

    name = "analytics"
    engine_name = "none"

    def __init__(self, settings: AnalyticsSettings) -> None:
        """Hold the settings; nothing loads until ``start``."""
        self.settings = settings

    def servicers(self) -> Sequence[Registrar]:
        """The AnalyticsService servicer."""
        return [
            (
                analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server,
                analytics_service_pb2_grpc.AnalyticsServiceServicer(),  # type: ignore[abstract]
                analytics_service_pb2.DESCRIPTOR.services_by_name["AnalyticsService"],
            )
        ]
