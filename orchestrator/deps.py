"""The orchestrator's connections to the five services it depends on."""

from __future__ import annotations

import time
from dataclasses import dataclass

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


@dataclass
class Dependencies:
    """One channel per dependency, shared by every call (gRPC multiplexes the streams)."""

    targets: dict[str, str]
    channels: dict[str, grpc.aio.Channel]
    stt: stt_service_pb2_grpc.SttServiceStub
    tts: tts_service_pb2_grpc.TtsServiceStub
    llm: llm_service_pb2_grpc.LlmServiceStub
    cache: cache_service_pb2_grpc.CacheServiceStub
    analytics: analytics_service_pb2_grpc.AnalyticsServiceStub

    @classmethod
    def connect(cls, settings: OrchestratorSettings) -> Dependencies:
        """Dial every dependency with the mesh's TLS and token settings (lazily: nothing blocks)."""
        targets = {
            "stt": settings.stt_target,
            "tts": settings.tts_target,
            "llm": settings.llm_target,
            "cache": settings.cache_target,
            "analytics": settings.analytics_target,
        }
        options = DialOptions.from_settings(settings)
        channels = {name: dial(target, options) for name, target in targets.items()}
        return cls(
            targets=targets,
            channels=channels,
            stt=stt_service_pb2_grpc.SttServiceStub(channels["stt"]),
            tts=tts_service_pb2_grpc.TtsServiceStub(channels["tts"]),
            llm=llm_service_pb2_grpc.LlmServiceStub(channels["llm"]),
            cache=cache_service_pb2_grpc.CacheServiceStub(channels["cache"]),
            analytics=analytics_service_pb2_grpc.AnalyticsServiceStub(channels["analytics"]),
        )

    async def status(self, name: str, timeout_s: float) -> orchestrator_service_pb2.ComponentStatus:
        """Health, version and engine of one dependency, from a grpc.health.v1 Check."""
        row = orchestrator_service_pb2.ComponentStatus(service=name, target=self.targets[name])
        stub = health_pb2_grpc.HealthStub(self.channels[name])
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
