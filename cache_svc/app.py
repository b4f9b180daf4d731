"""Wires cache_svc's servicer into the mesh runtime."""

from __future__ import annotations

from collections.abc import Sequence

from cache_svc.config import CacheSettings
from mesh.server import Registrar, ServicerApp
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc


class CacheApp(ServicerApp):
    """CacheService: every RPC answers UNIMPLEMENTED until its engine lands."""

    name = "cache"
    engine_name = "none"

    def __init__(self, settings: CacheSettings) -> None:
        """Hold the settings; nothing loads until ``start``."""
        self.settings = settings

    def servicers(self) -> Sequence[Registrar]:
        """The CacheService servicer."""
        return [
            (
                cache_service_pb2_grpc.add_CacheServiceServicer_to_server,
                cache_service_pb2_grpc.CacheServiceServicer(),  # type: ignore[abstract]
                cache_service_pb2.DESCRIPTOR.services_by_name["CacheService"],
            )
        ]
