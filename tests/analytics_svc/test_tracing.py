"""OpenTelemetry context crosses the mesh: client -> analytics, and client -> relay -> analytics.

The global tracer provider can be set once per process, so one module-scoped fixture installs
an SDK provider with an in-memory exporter (or adds the exporter to an SDK provider installed
earlier) before any server of these tests starts or any channel is dialled: the mesh decides
at those moments whether to trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from mesh import MeshServer, ServicerApp, ServiceSettings, dial
from mesh.server import Registrar
from mesh.tracing import tracing_enabled
from tests.analytics_svc.builders import call_ended, turn
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc, orchestrator_service_pb2, orchestrator_service_pb2_grpc

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    assert tracing_enabled()
    yield EXPORTER
    EXPORTER.shutdown()


class RelayServicer(orchestrator_service_pb2_grpc.OrchestratorServiceServicer):
    """Test-only: GetStatus asks analytics for a report through mesh.dial while it handles the call."""

    def __init__(self, analytics_target: str) -> None:
        self.analytics_target = analytics_target

    async def GetStatus(
        self, request: orchestrator_service_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_service_pb2.GetStatusResponse:
        async with dial(self.analytics_target) as channel:
            await analytics_service_pb2_grpc.AnalyticsServiceStub(channel).GetReport(pb.GetReportRequest())
        return orchestrator_service_pb2.GetStatusResponse()


class RelayApp(ServicerApp):
    name = "relay"
    engine_name = "none"

    def __init__(self, analytics_target: str) -> None:
        self.analytics_target = analytics_target

    def servicers(self) -> Sequence[Registrar]:
        return [
            (
                orchestrator_service_pb2_grpc.add_OrchestratorServiceServicer_to_server,
                RelayServicer(self.analytics_target),
                orchestrator_service_pb2.DESCRIPTOR.services_by_name["OrchestratorService"],
            )
        ]


@pytest.fixture
async def analytics_target(spans: InMemorySpanExporter, tmp_path: Path) -> AsyncIterator[str]:
    settings = AnalyticsSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, db_path=str(tmp_path / "a.db"))
    async with MeshServer(AnalyticsApp(settings), settings) as server:
        yield f"127.0.0.1:{server.port}"


def finished(trace_id: int) -> dict[str, ReadableSpan]:
    spans = EXPORTER.get_finished_spans()
    return {s.name: s for s in spans if s.context is not None and s.context.trace_id == trace_id}


async def test_the_analytics_server_span_is_a_child_of_the_client_span(analytics_target: str) -> None:
    tracer = trace.get_tracer("tests.analytics")
    async with dial(analytics_target) as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        with tracer.start_as_current_span("client") as client:
            await stub.GetReport(pb.GetReportRequest())
            await stub.Ingest(iter([pb.IngestRequest(events=[turn("traced"), call_ended("traced")])]), timeout=10)
            watched = [r async for r in stub.WatchSession(pb.WatchSessionRequest(session_id="traced"), timeout=10)]
    assert len(watched) == 2
    context = client.get_span_context()
    spans = finished(context.trace_id)
    for name in ("GetReport", "Ingest", "WatchSession"):
        server = spans[name]
        assert server.kind is trace.SpanKind.SERVER
        assert server.parent is not None
        assert server.parent.span_id == context.span_id
        assert server.attributes is not None
        assert server.attributes["voicebot.service"] == "analytics"


async def test_context_flows_server_to_client_to_server(analytics_target: str) -> None:
    settings = ServiceSettings.from_env({}, host="127.0.0.1", port=0, metrics_port=-1)
    async with MeshServer(RelayApp(analytics_target), settings) as relay:
        tracer = trace.get_tracer("tests.analytics")
        async with dial(f"127.0.0.1:{relay.port}") as channel:
            stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
            with tracer.start_as_current_span("caller") as caller:
                await stub.GetStatus(orchestrator_service_pb2.GetStatusRequest())
    context = caller.get_span_context()
    spans = finished(context.trace_id)
    relay_span, analytics_span = spans["GetStatus"], spans["GetReport"]
    assert relay_span.parent is not None
    assert relay_span.parent.span_id == context.span_id
    assert relay_span.attributes is not None
    assert relay_span.attributes["voicebot.service"] == "relay"
    assert analytics_span.parent is not None
    assert relay_span.context is not None
    assert analytics_span.parent.span_id == relay_span.context.span_id
    assert analytics_span.context is not None
    assert analytics_span.context.trace_id == context.trace_id
