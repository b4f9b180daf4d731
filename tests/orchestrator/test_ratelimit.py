"""Per-caller limits on Converse: the token bucket, the concurrency cap, eviction, and over gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from mesh import MeshServer, dial
from mesh.errors import ResourceExhausted
from orchestrator.app import OrchestratorApp
from orchestrator.config import OrchestratorSettings
from orchestrator.ratelimit import RateLimiter, peer_key
from tests.conftest import free_port
from voicebot.v1 import orchestrator_service_pb2 as pb
from voicebot.v1 import orchestrator_service_pb2_grpc


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate_and_the_message_says_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(calls_per_minute=6, burst=2, max_concurrent=0, clock=clock)
    for _ in range(2):
        limiter.acquire("a").release()
    with pytest.raises(ResourceExhausted, match=r"6 per minute.*retry in 10 s"):
        limiter.acquire("a")
    limiter.acquire("b").release()  # another caller has its own bucket
    clock.now += 10  # one token back (6 per minute)
    limiter.acquire("a").release()
    with pytest.raises(ResourceExhausted, match="retry in 10 s"):
        limiter.acquire("a")


def test_concurrent_calls_are_capped_and_released() -> None:
    limiter = RateLimiter(calls_per_minute=0, burst=0, max_concurrent=2, clock=Clock())
    first, second = limiter.acquire("a"), limiter.acquire("a")
    with pytest.raises(ResourceExhausted, match=r"2 calls in progress \(max_concurrent 2\); retry when one ends"):
        limiter.acquire("a")
    first.release()
    first.release()  # idempotent: frees one slot, not two
    third = limiter.acquire("a")
    with pytest.raises(ResourceExhausted):
        limiter.acquire("a")
    second.release()
    third.release()


def test_idle_buckets_are_evicted_and_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(calls_per_minute=60, burst=1, max_concurrent=1, max_callers=100, clock=clock)
    held = limiter.acquire("busy")
    for index in range(1000):
        limiter.acquire(f"caller-{index}").release()
        assert len(limiter) <= 100
    clock.now += 5  # every bucket has refilled: idle ones are forgotten on the next call
    limiter.acquire("new").release()
    assert len(limiter) <= 3
    with pytest.raises(ResourceExhausted):  # a caller holding a call is never forgotten
        limiter.acquire("busy")
    held.release()


def test_calls_without_caller_id_share_a_scaled_budget_per_peer() -> None:
    limiter = RateLimiter(calls_per_minute=60, burst=1, max_concurrent=1, peer_scale=3, clock=Clock())
    held = [limiter.acquire("ipv4:10.0.0.7", peer=True) for _ in range(3)]
    with pytest.raises(ResourceExhausted, match=r"no caller_id from this address .*max_concurrent 3"):
        limiter.acquire("ipv4:10.0.0.7", peer=True)
    limiter.acquire("ipv4:10.0.0.7").release()  # a caller id that looks the same is another bucket
    for lease in held:
        lease.release()
    with pytest.raises(ResourceExhausted, match=r"limit 180 per minute, burst 3\); retry in 1 s"):
        limiter.acquire("ipv4:10.0.0.7", peer=True)
    exempt = RateLimiter(calls_per_minute=1, burst=1, max_concurrent=1, peer_scale=0, clock=Clock())
    leases = [exempt.acquire("ipv4:10.0.0.7", peer=True) for _ in range(5)]
    assert len(exempt) == 0
    for lease in leases:
        lease.release()


def test_peer_key_drops_the_port() -> None:
    assert peer_key("ipv4:10.0.0.7:51234") == "ipv4:10.0.0.7"
    assert peer_key("ipv6:[::1]:51234") == "ipv6:[::1]"
    assert peer_key("") == "unknown-peer"


@pytest.fixture
async def orchestrator() -> AsyncIterator[str]:
    """An orchestrator whose peers are not running: the limits act before any of them is used."""
    dead = {f"{name}_target": f"127.0.0.1:{free_port()}" for name in ("stt", "tts", "llm", "cache", "analytics")}
    settings = OrchestratorSettings.from_env(
        {},
        host="127.0.0.1",
        port=0,
        metrics_port=-1,
        prompt_warmup_s=0.1,
        rate_limit_calls_per_minute=60,
        rate_limit_burst=4,
        rate_limit_max_concurrent=2,
        **dead,
    )
    async with MeshServer(OrchestratorApp(settings), settings) as server:
        yield f"127.0.0.1:{server.port}"


async def _open(stub: orchestrator_service_pb2_grpc.OrchestratorServiceStub, caller: str) -> grpc.aio.StreamStreamCall:
    """Start a typed call that stays open, and wait for its first response."""
    call = stub.Converse(timeout=30)
    await call.write(pb.ConverseRequest(config=pb.SessionConfig(text_only=True, caller_id=caller)))
    await call.read()
    return call


async def test_converse_over_grpc_refuses_a_callers_third_concurrent_call_and_sixth_start(orchestrator: str) -> None:
    async with dial(orchestrator) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        calls = [await _open(stub, "+15550001"), await _open(stub, "+15550001")]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _open(stub, "+15550001")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_concurrent 2" in (refused.value.details() or "")
        other = await _open(stub, "+15550002")  # another caller is served meanwhile
        for call in [*calls, other]:
            call.cancel()
        await asyncio.sleep(0.2)
        # Slots are back once the calls end; the burst of 4 starts is spent after two more.
        more = [await _open(stub, "+15550001"), await _open(stub, "+15550001")]
        for call in more:
            call.cancel()
        await asyncio.sleep(0.2)
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await _open(stub, "+15550001")
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "per minute" in (limited.value.details() or "")
        assert "retry in" in (limited.value.details() or "")
