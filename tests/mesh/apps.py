"""A test-only service that implements two real contracts with controllable behaviour.

``CacheService.Lookup`` (unary) and ``SttService.StreamingRecognize`` (bidi) stand in for any
service: the query or audio decides whether they answer, raise a domain error, or crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc

from mesh.errors import InvalidArgument
from mesh.server import HealthControl, Registrar, ServicerApp
from mesh.settings import ServiceSettings
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc, stt_service_pb2, stt_service_pb2_grpc


class ProbeSettings(ServiceSettings):
    """Settings for the probe service (no fields of its own)."""

    service = "probe"


class _Cache(cache_service_pb2_grpc.CacheServiceServicer):
    async def Lookup(
        self, request: cache_service_pb2.LookupRequest, context: grpc.aio.ServicerContext
    ) -> cache_service_pb2.LookupResponse:
        if request.query == "bad":
            raise InvalidArgument("query must not be 'bad'")
        if request.query == "boom":
            raise RuntimeError("secret internal detail")
        return cache_service_pb2.LookupResponse(hit=True, answer=request.query)

    async def Clear(
        self, request: cache_service_pb2.ClearRequest, context: grpc.aio.ServicerContext
    ) -> cache_service_pb2.ClearResponse:
        return cache_service_pb2.ClearResponse(removed_count=7)


class _Stt(stt_service_pb2_grpc.SttServiceServicer):
    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[stt_service_pb2.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[stt_service_pb2.StreamingRecognizeResponse]:
        async for request in request_iterator:
            if request.audio == b"crash":
                raise RuntimeError("secret internal detail")
            event = stt_service_pb2.SpeechEvent(offset_ms=len(request.audio))
            yield stt_service_pb2.StreamingRecognizeResponse(speech_event=event)


class ProbeApp(ServicerApp):
    """Serves the two test servicers; ``warm_up`` holds health at NOT_SERVING until set."""

    name = "probe"
    engine_name = "probe-engine"
    admin_methods = frozenset({"/voicebot.v1.CacheService/Clear"})

    def __init__(self) -> None:
        self.warm_up = asyncio.Event()
        self.warm_up.set()
        self.stopped = False

    def servicers(self) -> Sequence[Registrar]:
        return [
            (
                cache_service_pb2_grpc.add_CacheServiceServicer_to_server,
                _Cache(),
                cache_service_pb2.DESCRIPTOR.services_by_name["CacheService"],
            ),
            (
                stt_service_pb2_grpc.add_SttServiceServicer_to_server,
                _Stt(),
                stt_service_pb2.DESCRIPTOR.services_by_name["SttService"],
            ),
        ]

    async def start(self, health: HealthControl) -> None:
        await self.warm_up.wait()

    async def stop(self) -> None:
        self.stopped = True


def settings(**overrides: object) -> ProbeSettings:
    """Probe settings on a free loopback port with metrics off."""
    values: dict[str, object] = {"host": "127.0.0.1", "port": 0, "metrics_port": -1, "grace_s": 0.0}
    values.update(overrides)
    return ProbeSettings.from_env({}, **values)


def audio_request(data: bytes) -> stt_service_pb2.StreamingRecognizeRequest:
    """A StreamingRecognize request carrying ``data`` as audio."""
    return stt_service_pb2.StreamingRecognizeRequest(audio=data)
