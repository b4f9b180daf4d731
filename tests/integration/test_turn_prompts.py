"""Pre-synthesised prompts in a turn (the filler while tools run, the loan disclosure) and the cache
lookup started on a stable interim transcript; the whole mesh on the ``timed`` engines."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from mesh import dial
from orchestrator.banking.loans import LOAN_DISCLOSURE
from orchestrator.caller import CALLER_RATE, caller_format, place_call
from orchestrator.launcher import LocalMesh
from orchestrator.prompts import FILLER, GREETING
from tests.conftest import free_port
from tests.integration.conftest import start_mesh
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc, orchestrator_service_pb2_grpc
from voicebot.v1 import orchestrator_service_pb2 as pb

pytestmark = pytest.mark.slow

QUESTION = "what are your branch hours"  # what the timed recogniser hears in any speech
CACHED = "Every branch is open from eight to six on weekdays."


@pytest.fixture(scope="module")
def timed_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMesh, int]]:
    """The mesh on the timed engines, with a slow model (so the filler is due) and orchestrator metrics on."""
    metrics_port = free_port()
    running = start_mesh(
        tmp_path_factory.mktemp("timed"),
        VOICEBOT_STT_ENGINE="timed",
        VOICEBOT_LLM_ENGINE="timed",
        VOICEBOT_TTS_ENGINE="timed",
        VOICEBOT_LLM_TIMED_TTFT_MS="1200",
        VOICEBOT_ORCHESTRATOR_FILLER_AFTER_MS="300",
        VOICEBOT_ORCHESTRATOR_METRICS_PORT=str(metrics_port),
    )
    yield running, metrics_port
    running.stop()


def speech(seconds: float = 1.8) -> np.ndarray:
    """Speech-like tone bursts (240 ms on, 60 ms off) that the timed recogniser's VAD hears as speech."""
    t = np.arange(int(CALLER_RATE * seconds)) / CALLER_RATE
    on = (np.arange(t.size) // (CALLER_RATE * 60 // 1000)) % 5 != 4
    return (0.3 * np.sin(2 * np.pi * 250 * t) * on).astype(np.float32)


def spoken_segments(responses: list[pb.ConverseResponse]) -> list[str]:
    """Segment texts of the bot's audio after the greeting, each once, in order."""
    segments: list[str] = []
    for response in responses:
        if response.WhichOneof("output") == "bot_audio":
            text = response.bot_audio.segment_text
            if text != GREETING and (not segments or segments[-1] != text):
                segments.append(text)
    return segments


async def test_the_filler_plays_while_tools_run_and_the_disclosure_plays_from_the_prompt_cache(
    timed_mesh: tuple[LocalMesh, int],
) -> None:
    mesh, _ = timed_mesh
    responses: list[pb.ConverseResponse] = []
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        config = pb.SessionConfig(input_format=caller_format(), tenant="filler-test")
        record = await place_call(stub, config, caller_audio=speech(), realtime=False, on_response=responses.append)
    texts = [r.bot_text.delta for r in responses if r.WhichOneof("output") == "bot_text" and r.turn_index == 0]
    assert texts[0] == GREETING
    assert texts[1] == FILLER + " ", "the filler is the first thing said in the turn"
    segments = spoken_segments(responses)
    assert segments[0] == FILLER
    assert segments[-1] == LOAN_DISCLOSURE, "the disclosure plays whole, as its pre-synthesised clip"
    assert LOAN_DISCLOSURE in record.bot_text


async def test_a_cache_lookup_started_on_a_stable_interim_answers_the_turn(timed_mesh: tuple[LocalMesh, int]) -> None:
    mesh, metrics_port = timed_mesh
    scope = cache_service_pb2.CacheScope(tenant="prefetch-test", language_code="en-US")
    async with (
        dial(mesh.child("cache").target) as cache_channel,
        dial(mesh.child("orchestrator").target) as channel,
    ):
        cache = cache_service_pb2_grpc.CacheServiceStub(cache_channel)
        await cache.Store(cache_service_pb2.StoreRequest(query=QUESTION, answer=CACHED, scope=scope), timeout=10)
        before = prefetches_used(metrics_port)
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        config = pb.SessionConfig(input_format=caller_format(), tenant="prefetch-test")
        record = await place_call(stub, config, caller_audio=speech(), realtime=False)
    assert CACHED in record.bot_text
    assert prefetches_used(metrics_port) == before + 1


def prefetches_used(port: int) -> float:
    """The orchestrator's ``voicebot_cache_prefetches_total{outcome="used"}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith('voicebot_cache_prefetches_total{outcome="used"}'):
                return float(line.split()[-1])
    return 0.0


async def test_a_call_in_another_voice_hears_its_greeting_synthesised_in_that_voice(
    timed_mesh: tuple[LocalMesh, int],
) -> None:
    mesh, _ = timed_mesh
    segments: dict[str, list[str]] = {}
    async with dial(mesh.child("orchestrator").target) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        for voice in ("", "timed"):  # the prompts' voice (the default), and one named explicitly
            responses: list[pb.ConverseResponse] = []
            config = pb.SessionConfig(input_format=caller_format(), voice=voice, tenant="voice-test")
            await place_call(stub, config, realtime=False, on_response=responses.append)
            segments[voice] = [r.bot_audio.segment_text for r in responses if r.WhichOneof("output") == "bot_audio"]
    assert set(segments[""]) == {GREETING}, "the default voice plays the pre-synthesised clip"
    assert GREETING not in segments["timed"], "another voice synthesises it, sentence by sentence"
    assert segments["timed"][0] == GREETING.split(". ")[0] + "."
