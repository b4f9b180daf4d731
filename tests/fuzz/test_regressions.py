"""Bugs the fuzzer found, one test each, kept in the default run."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import timestamp_pb2

from mesh import dial
from tests.fuzz.conftest import Peers, paced
from voicebot.v1 import (
    analytics_service_pb2,
    analytics_service_pb2_grpc,
    cache_service_pb2,
    cache_service_pb2_grpc,
    tts_service_pb2,
    tts_service_pb2_grpc,
)

CORRUPT = b"\x0a\xff\xff\xff\xff\x0f"
"""Field 1, length-delimited, with a length varint far past the end: protobuf refuses to parse it."""


@pytest.mark.parametrize(
    ("service", "method", "kind"),
    [
        ("cache", "/voicebot.v1.CacheService/Lookup", "unary_unary"),
        ("cache", "/voicebot.v1.CacheService/Warm", "stream_unary"),
        ("llm", "/voicebot.v1.LlmService/StreamingGenerate", "unary_stream"),
        ("stt", "/voicebot.v1.SttService/StreamingRecognize", "stream_stream"),
    ],
)
def test_undecodable_request_is_invalid_argument(peers: Peers, service: str, method: str, kind: str) -> None:
    """gRPC answered undecodable request bytes with UNKNOWN (and logged a traceback); the mesh
    interceptor now answers INVALID_ARGUMENT naming the problem, for all four RPC kinds."""

    async def send(channel: grpc.aio.Channel) -> None:
        call = getattr(channel, kind)(method, request_serializer=None, response_deserializer=None)
        if kind == "unary_unary":
            await call(CORRUPT, timeout=10)
        elif kind == "stream_unary":
            await call(paced([CORRUPT]), timeout=10)
        elif kind == "unary_stream":
            [_ async for _ in call(CORRUPT, timeout=10)]
        else:
            [_ async for _ in call(paced([CORRUPT]), timeout=10)]

    target, cache = peers.target(service), peers.target("cache")

    async def case() -> None:
        async with dial(target) as channel, dial(cache) as other:
            stats = cache_service_pb2_grpc.CacheServiceStub(other)
            healthy = asyncio.ensure_future(stats.GetStats(cache_service_pb2.GetStatsRequest(), timeout=10))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await send(channel)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not a valid protobuf message" in (caught.value.details() or "")
            assert (await healthy).storage

    peers.loop.run_until_complete(case())


@pytest.mark.slow
@pytest.mark.parametrize("delta", ["0\x00", "Pay \x00 now.", "a\x07b\x1b[0m.", "\x7f ok."])
def test_control_characters_in_tts_text_are_spoken_around(peers: Peers, delta: str) -> None:
    """A NUL in a text delta reached espeak-ng and failed the stream with INTERNAL (ValueError: embedded
    null character); control characters are now spaces to the normaliser and the stream speaks."""
    target, cache = peers.target("tts"), peers.target("cache")

    async def case() -> None:
        async with dial(target) as channel, dial(cache) as other:
            stats = cache_service_pb2_grpc.CacheServiceStub(other)
            healthy = asyncio.ensure_future(stats.GetStats(cache_service_pb2.GetStatsRequest(), timeout=30))
            tts = tts_service_pb2_grpc.TtsServiceStub(channel)
            requests = [
                tts_service_pb2.StreamingSynthesizeRequest(config=tts_service_pb2.SynthesisConfig()),
                tts_service_pb2.StreamingSynthesizeRequest(text=delta),
            ]
            responses = [r async for r in tts.StreamingSynthesize(paced(requests), timeout=60)]
            assert responses[-1].segment_end
            assert responses[0].segment_text == delta
            assert (await healthy).storage

    peers.loop.run_until_complete(case())


@pytest.mark.parametrize("end_s", [-62_135_596_800, -62_135_510_401])
def test_a_report_ending_in_year_one_starts_no_earlier_than_a_timestamp_can(peers: Peers, end_s: int) -> None:
    """GetReport with only an end_time near 0001-01-01 defaulted its start a day earlier, which no
    Timestamp can hold: the reply failed with INTERNAL (ValueError). The default start is clamped."""
    target = peers.target("analytics")

    async def case() -> None:
        async with dial(target) as channel:
            stub = analytics_service_pb2_grpc.AnalyticsServiceStub(channel)
            request = analytics_service_pb2.GetReportRequest(end_time=timestamp_pb2.Timestamp(seconds=end_s))
            report = await stub.GetReport(request, timeout=30)
            assert report.start_time.seconds == -62_135_596_800
            assert report.end_time.seconds == end_s

    peers.loop.run_until_complete(case())
