"""One trace per caller turn: the turn's span is the parent of every downstream server span."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from cache_svc.app import CacheApp
from cache_svc.config import CacheSettings
from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from mesh import MeshServer, dial
from mesh.tracing import tracing_enabled
from orchestrator.app import OrchestratorApp
from orchestrator.caller import caller_format, place_call
from orchestrator.config import OrchestratorSettings
from stt_svc.app import SttApp
from stt_svc.config import SttSettings
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc

pytestmark = pytest.mark.slow

EXPORTER = InMemorySpanExporter()
LOCAL = {"host": "127.0.0.1", "port": 0, "metrics_port": -1}


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set once per process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    assert tracing_enabled()
    yield EXPORTER
    EXPORTER.shutdown()


@pytest.fixture
async def orchestrator(spans: InMemorySpanExporter, tmp_path: Path) -> AsyncIterator[str]:
    """The six services in this process, so every server's spans reach the in-memory exporter."""
    async with contextlib.AsyncExitStack() as stack:
        peers = {
            "stt": SttApp(SttSettings.from_env({}, **LOCAL)),
            "tts": TtsApp(TtsSettings.from_env({}, **LOCAL)),
            "llm": LlmApp(LlmSettings.from_env({}, **LOCAL)),
            "cache": CacheApp(CacheSettings.from_env({}, **LOCAL)),
            "analytics": AnalyticsApp(AnalyticsSettings.from_env({}, db_path=str(tmp_path / "a.db"), **LOCAL)),
        }
        targets = {}
        for name, app in peers.items():
            server = await stack.enter_async_context(MeshServer(app, app.settings))  # type: ignore[attr-defined]
            targets[f"{name}_target"] = f"127.0.0.1:{server.port}"
        settings = OrchestratorSettings.from_env({}, events_spill_dir=str(tmp_path / "spill"), **LOCAL, **targets)
        server = await stack.enter_async_context(MeshServer(OrchestratorApp(settings), settings))
        yield f"127.0.0.1:{server.port}"


async def test_each_turn_is_one_trace_spanning_cache_llm_and_tts(
    orchestrator: str, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    async with dial(orchestrator) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        config = pb.SessionConfig(input_format=caller_format())
        await place_call(stub, config, texts=["what are your branch hours", "thanks goodbye"], realtime=False)
    finished = spans.get_finished_spans()
    turns = [s for s in finished if s.name == "turn"]
    assert [s.attributes["voicebot.turn_index"] for s in turns] == [0, 1]  # type: ignore[index]
    assert len({s.context.trace_id for s in turns}) == 2
    first = turns[0]
    children = {
        s.attributes["voicebot.service"]  # type: ignore[index]
        for s in finished
        if s.parent is not None and s.parent.span_id == first.context.span_id
    }
    assert {"cache", "llm", "tts"} <= children
    assert first.parent is None
    assert first.links
    assert first.links[0].context.trace_id != first.context.trace_id
