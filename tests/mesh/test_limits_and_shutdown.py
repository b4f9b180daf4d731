"""Oversized messages are refused without harm; a graceful stop lets in-flight streams finish."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import MeshServer, dial
from tests.mesh.apps import ProbeApp, audio_request, settings
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc, stt_service_pb2, stt_service_pb2_grpc


async def test_oversized_message_is_resource_exhausted_and_the_server_keeps_serving() -> None:
    async with (
        MeshServer(ProbeApp(), settings(max_message_bytes=64 * 1024)) as server,
        dial(f"127.0.0.1:{server.port}") as channel,
    ):
        stt = stt_service_pb2_grpc.SttServiceStub(channel)
        healthy = stt.StreamingRecognize()
        await healthy.write(audio_request(b"a" * 10))
        assert (await healthy.read()).speech_event.offset_ms == 10

        oversized = stt.StreamingRecognize(iter([audio_request(b"x" * 100_000)]))
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for _ in oversized:
                pass
        assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        await healthy.write(audio_request(b"b" * 20))
        assert (await healthy.read()).speech_event.offset_ms == 20
        await healthy.done_writing()
        assert await healthy.code() == grpc.StatusCode.OK
        reply = await cache_service_pb2_grpc.CacheServiceStub(channel).Lookup(
            cache_service_pb2.LookupRequest(query="still here")
        )
    assert reply.answer == "still here"


async def test_graceful_stop_refuses_new_calls_but_lets_an_in_flight_stream_finish() -> None:
    server = MeshServer(ProbeApp(), settings())
    await server.start()
    target = f"127.0.0.1:{server.port}"
    async with dial(target) as channel:
        stt = stt_service_pb2_grpc.SttServiceStub(channel)
        in_flight = stt.StreamingRecognize()
        await in_flight.write(audio_request(b"1"))
        assert (await in_flight.read()).speech_event.offset_ms == 1

        stopping = asyncio.create_task(server.stop(grace=10.0))
        await asyncio.sleep(0.2)
        async with dial(target) as fresh:
            health = health_pb2_grpc.HealthStub(fresh)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        for payload in (b"22", b"333"):
            await in_flight.write(audio_request(payload))
            reply: stt_service_pb2.StreamingRecognizeResponse = await in_flight.read()
            assert reply.speech_event.offset_ms == len(payload)
        assert not stopping.done(), "the server must wait for the in-flight stream"
        await in_flight.done_writing()
        assert await in_flight.code() == grpc.StatusCode.OK
        # With the last stream done, the stop completes well before the 10 s grace.
        await asyncio.wait_for(stopping, timeout=5)
