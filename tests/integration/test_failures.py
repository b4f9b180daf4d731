"""A dependency stopped mid-call: the caller hears the apology, the call goes on, nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mesh import dial
from orchestrator.caller import CallRecord, caller_format, place_call
from orchestrator.launcher import LocalMesh
from orchestrator.prompts import APOLOGY
from tests.integration.conftest import start_mesh
from voicebot.v1 import analytics_service_pb2, analytics_service_pb2_grpc, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """A mesh of its own, since these tests stop its services."""
    running = start_mesh(tmp_path_factory.mktemp("fragile"))
    yield running
    running.stop()


async def turn(mesh: LocalMesh, config: pb.SessionConfig, text: str) -> CallRecord:
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        return await place_call(stub, config, texts=[text], realtime=False, max_wait_s=30)


async def orchestrator_sees_serving(mesh: LocalMesh, service: str, timeout_s: float = 15) -> None:
    """Wait until the orchestrator's own channel reaches the restarted service (it reconnects within 2 s)."""
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        for _ in range(int(timeout_s * 4)):
            status = await stub.GetStatus(pb.GetStatusRequest())
            if any(c.service == service and c.state == pb.SERVING_STATE_SERVING for c in status.components):
                return
            await asyncio.sleep(0.25)
    raise AssertionError(f"the orchestrator never saw {service} serving again")


def voice() -> pb.SessionConfig:
    return pb.SessionConfig(input_format=caller_format())


def errors(record: CallRecord) -> list[pb.CallEvent]:
    return [e for e in record.events if e.type == pb.CALL_EVENT_TYPE_ERROR]


@pytest.mark.parametrize(
    ("service", "question"),
    [
        ("tts", "when is the riverside branch open"),
        # Never asked before, so the semantic cache cannot answer it while the model is down.
        ("llm", "what time does the downtown branch close on friday"),
    ],
)
async def test_a_dead_dependency_gets_the_apology_and_the_call_ends_cleanly(
    fragile: LocalMesh, service: str, question: str
) -> None:
    fragile.kill(service)
    try:
        record = await turn(fragile, voice(), question)
    finally:
        await asyncio.to_thread(fragile.restart, service)
    failed = errors(record)
    assert [e.service for e in failed] == [service]
    assert failed[0].code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    assert APOLOGY in record.bot_text
    assert record.event_types()[-1] == "CALL_ENDED"
    apology_audio = record.bot_format is not None and len(record.bot_audio) > 0
    assert apology_audio, "the pre-synthesised apology plays even with tts_svc down"
    await orchestrator_sees_serving(fragile, service)
    after = await turn(fragile, voice(), question)
    assert errors(after) == []
    assert "Saturday" in after.bot_text


async def test_cache_and_analytics_down_do_not_disturb_calls_and_events_arrive_later(fragile: LocalMesh) -> None:
    fragile.kill("cache")
    fragile.kill("analytics")
    try:
        record = await turn(fragile, voice(), "what are your branch hours")
        assert errors(record) == []
        assert "Saturday" in record.bot_text
    finally:
        await asyncio.to_thread(fragile.restart, "cache")
        await asyncio.to_thread(fragile.restart, "analytics")
    async with dial(fragile.child("analytics").target) as channel:
        stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
        request = analytics_service_pb2.WatchSessionRequest(session_id=record.session_id)
        kinds = []
        async for reply in stub.WatchSession(request, timeout=30):
            kinds.append(reply.event.WhichOneof("detail"))
    assert kinds[0] == "call_started"
    assert "turn_completed" in kinds
    assert kinds[-1] == "call_ended"


async def test_speech_recognition_restarting_mid_call_reconnects(
    fragile: LocalMesh, speech: dict[str, np.ndarray]
) -> None:
    restarted = asyncio.Event()

    async def once_restarted(utterance: int) -> None:
        if utterance == 1:  # the question comes once recognition is back (a slow restart must not eat it)
            await restarted.wait()

    async with dial(fragile.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        call = asyncio.create_task(
            place_call(
                stub,
                voice(),
                caller_audio=[np.zeros(16000, dtype=np.float32), speech["loan"]],
                realtime=True,
                before_utterance=once_restarted,
            )
        )
        await asyncio.sleep(1.0)
        await asyncio.to_thread(fragile.restart, "stt")
        restarted.set()
        record = await asyncio.wait_for(call, 120)
    assert [e.service for e in errors(record)] == ["stt"]
    assert "386.66" in record.bot_text


def test_the_services_logs_hold_no_traceback_from_these_failures(fragile: LocalMesh, tmp_path: Path) -> None:
    log = fragile.child("orchestrator").log_path.read_text()
    assert "Traceback" not in log
