"""The mesh interceptor on unary and bidi RPCs: request ids, identity, errors, metrics."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from mesh import MeshServer, dial
from tests.mesh.apps import ProbeApp, audio_request, settings
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc, stt_service_pb2_grpc

LOOKUP = "/voicebot.v1.CacheService/Lookup"
RECOGNIZE = "/voicebot.v1.SttService/StreamingRecognize"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "probe", **labels}) or 0.0


async def test_unary_answer_carries_request_id_and_service_identity() -> None:
    async with MeshServer(ProbeApp(), settings()) as server, dial(f"127.0.0.1:{server.port}") as channel:
        stub = cache_service_pb2_grpc.CacheServiceStub(channel)
        call = stub.Lookup(cache_service_pb2.LookupRequest(query="hi"), metadata=(("x-request-id", "req-42"),))
        assert (await call).answer == "hi"
        metadata = dict(await call.initial_metadata())
        generated = stub.Lookup(cache_service_pb2.LookupRequest(query="hi"))
        await generated
        other = dict(await generated.initial_metadata())
    assert metadata["x-request-id"] == "req-42"
    assert metadata["voicebot-service"] == "probe"
    assert metadata["voicebot-engine"] == "probe-engine"
    assert "voicebot-version" in metadata
    assert len(other["x-request-id"]) == 16


async def test_domain_error_becomes_its_status_with_the_message() -> None:
    async with MeshServer(ProbeApp(), settings()) as server, dial(f"127.0.0.1:{server.port}") as channel:
        stub = cache_service_pb2_grpc.CacheServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.Lookup(cache_service_pb2.LookupRequest(query="bad"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details() == "query must not be 'bad'"


async def test_crash_becomes_internal_naming_the_request_id_without_leaking_details() -> None:
    async with MeshServer(ProbeApp(), settings()) as server, dial(f"127.0.0.1:{server.port}") as channel:
        cache = cache_service_pb2_grpc.CacheServiceStub(channel)
        stt = stt_service_pb2_grpc.SttServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await cache.Lookup(cache_service_pb2.LookupRequest(query="boom"), metadata=(("x-request-id", "r-1"),))
        stream = stt.StreamingRecognize(iter([audio_request(b"ok"), audio_request(b"crash")]))
        with pytest.raises(grpc.aio.AioRpcError) as bidi:
            async for _ in stream:
                pass
        still = await cache.Lookup(cache_service_pb2.LookupRequest(query="fine"))
    assert unary.value.code() == grpc.StatusCode.INTERNAL
    assert unary.value.details() == "internal error (request id r-1)"
    assert bidi.value.code() == grpc.StatusCode.INTERNAL
    for details in (unary.value.details(), bidi.value.details()):
        assert "secret" not in details
        assert "Traceback" not in details
    assert still.answer == "fine"


async def test_unimplemented_method_says_so() -> None:
    async with MeshServer(ProbeApp(), settings()) as server, dial(f"127.0.0.1:{server.port}") as channel:
        stub = cache_service_pb2_grpc.CacheServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.GetStats(cache_service_pb2.GetStatsRequest())
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "GetStats is not implemented" in failure.value.details()


async def test_bidi_stream_messages_codes_and_active_streams_are_counted() -> None:
    before_in = sample("voicebot_stream_messages_total", method=RECOGNIZE, direction="in")
    before_out = sample("voicebot_stream_messages_total", method=RECOGNIZE, direction="out")
    before_ok = sample("voicebot_rpc_total", method=RECOGNIZE, code="OK")
    before_bad = sample("voicebot_rpc_total", method=LOOKUP, code="INVALID_ARGUMENT")
    async with MeshServer(ProbeApp(), settings()) as server, dial(f"127.0.0.1:{server.port}") as channel:
        stt = stt_service_pb2_grpc.SttServiceStub(channel)
        replies = [
            r.speech_event.offset_ms
            async for r in stt.StreamingRecognize(iter([audio_request(b"x" * n) for n in (1, 2, 3)]))
        ]
        with pytest.raises(grpc.aio.AioRpcError):
            await cache_service_pb2_grpc.CacheServiceStub(channel).Lookup(cache_service_pb2.LookupRequest(query="bad"))
    assert replies == [1, 2, 3]
    assert sample("voicebot_stream_messages_total", method=RECOGNIZE, direction="in") - before_in == 3
    assert sample("voicebot_stream_messages_total", method=RECOGNIZE, direction="out") - before_out == 3
    assert sample("voicebot_rpc_total", method=RECOGNIZE, code="OK") - before_ok == 1
    assert sample("voicebot_rpc_total", method=LOOKUP, code="INVALID_ARGUMENT") - before_bad == 1
    assert sample("voicebot_rpc_active", method=RECOGNIZE) == 0
    assert sample("voicebot_rpc_duration_seconds_count", method=RECOGNIZE) >= 1
