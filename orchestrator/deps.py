"""The orchestrator's connections to the five services it depends on."""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.client import DialOptions, dial
from orchestrator.config import OrchestratorSettings
from voicebot.v1 import (
    analytics_service_pb2_grpc,
    cache_service_pb2_grpc,
    llm_service_pb2_grpc,
    orchestrator_service_pb2,
    stt_service_pb2_grpc,
    tts_service_pb2_grpc,
)

SERVING_STATE = orchestrator_service_pb2.ServingState


class Dependencies:
    """One channel per dependency, shared by every call (gRPC multiplexes the streams).

    Channels are dialled on first use, inside the event loop that serves the calls (a
    ``grpc.aio`` channel belongs to the loop it was made in).
    """

    def __init__(self, targets: dict[str, str], options: DialOptions) -> None:
        """Reach each service at ``targets[name]`` with ``options``."""
        self.targets = targets
        self.options = options
        self.channels: dict[str, grpc.aio.Channel] = {}

    @classmethod
    def connect(cls, settings: OrchestratorSettings) -> Dependencies:
        """Dependencies at the targets in ``settings``, with the mesh's TLS and token settings."""
        targets = {
            "stt": settings.stt_target,
            "tts": settings.tts_target,
            "llm": settings.llm_target,
            "cache": settings.cache_target,
            "analytics": settings.analytics_target,
        }
        return cls(targets, DialOptions.from_settings(settings))

    def channel(self, name: str) -> grpc.aio.Channel:
        """The channel to ``name``, dialled on first use."""
        if name not in self.channels:
            self.channels[name] = dial(self.targets[name], self.options)
        return self.channels[name]

    @property
    def stt(self) -> stt_service_pb2_grpc.SttServiceStub:
        """stt_svc."""
        return stt_service_pb2_grpc.SttServiceStub(self.channel("stt"))

    @property
    def tts(self) -> tts_service_pb2_grpc.TtsServiceStub:
        """tts_svc."""
        return tts_service_pb2_grpc.TtsServiceStub(self.channel("tts"))

    @property
    def llm(self) -> llm_service_pb2_grpc.LlmServiceStub:
        """llm_svc."""
        return llm_service_pb2_grpc.LlmServiceStub(self.channel("llm"))

    @property
    def cache(self) -> cache_service_pb2_grpc.CacheServiceStub:
        """cache_svc."""
        return cache_service_pb2_grpc.CacheServiceStub(self.channel("cache"))

    @property
    def analytics(self) -> analytics_service_pb2_grpc.AnalyticsServiceStub:
        """analytics_svc."""
        return analytics_service_pb2_grpc.AnalyticsServiceStub(self.channel("analytics"))

    async def status(self, name: str, timeout_s: float) -> orchestrator_service_pb2.ComponentStatus:
        """Health, version and engine of one dependency, from a grpc.health.v1 Check."""
        row = orchestrator_service_pb2.ComponentStatus(service=name, target=self.targets[name])
        stub = health_pb2_grpc.HealthStub(self.channel(name))
        started = time.perf_counter()
        call = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        try:
            reply = await call
            metadata = dict(await call.initial_metadata() or ())
        except grpc.aio.AioRpcError as exc:
            row.state = SERVING_STATE.SERVING_STATE_UNREACHABLE
            row.detail = f"{exc.code().name}: {exc.details()}"
            return row
        row.latency_ms = int((time.perf_counter() - started) * 1000)
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        row.state = SERVING_STATE.SERVING_STATE_SERVING if serving else SERVING_STATE.SERVING_STATE_NOT_SERVING
        row.version = str(metadata.get("voicebot-version", ""))
        row.engine = str(metadata.get("voicebot-engine", ""))
        return row

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()
