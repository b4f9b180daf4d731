"""The SDK imports with its light dependencies and the catalogue agrees with the protos."""

from voicebot.catalog import SERVICES
from voicebot.v1 import (
    analytics_service_pb2,
    cache_service_pb2,
    llm_service_pb2,
    orchestrator_service_pb2,
    stt_service_pb2,
    tts_service_pb2,
)

MODULES = [
    orchestrator_service_pb2,
    stt_service_pb2,
    tts_service_pb2,
    llm_service_pb2,
    cache_service_pb2,
    analytics_service_pb2,
]


def test_every_catalogue_entry_names_a_proto_service() -> None:
    declared = {svc.full_name for module in MODULES for svc in module.DESCRIPTOR.services_by_name.values()}
    assert {info.grpc_service for info in SERVICES} == declared


def test_ports_are_distinct() -> None:
    assert len({info.default_port for info in SERVICES}) == len(SERVICES)
