"""Fixtures of the analytics tests: a real AnalyticsService on loopback over a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from mesh import MeshServer, dial
from voicebot.v1 import analytics_service_pb2 as pb
from voicebot.v1 import analytics_service_pb2_grpc


@dataclass
class Analytics:
    """A running AnalyticsService and a stub dialled to it."""

    server: MeshServer
    app: AnalyticsApp
    settings: AnalyticsSettings
    channel: grpc.aio.Channel
    stub: analytics_service_pb2_grpc.AnalyticsServiceStub

    async def ingest(self, *batches: list[pb.Event]) -> pb.IngestResponse:
        """Send ``batches`` over one Ingest stream."""

        async def requests() -> AsyncIterator[pb.IngestRequest]:
            for batch in batches:
                yield pb.IngestRequest(events=batch)

        return await self.stub.Ingest(requests(), timeout=30)


AnalyticsFactory = Callable[..., Awaitable[Analytics]]


@pytest.fixture
async def make_analytics(tmp_path: Path) -> AsyncIterator[AnalyticsFactory]:
    """Start AnalyticsServices with setting overrides; all are stopped after the test."""
    running: list[Analytics] = []

    async def make(**overrides: Any) -> Analytics:
        overrides.setdefault("db_path", str(tmp_path / f"analytics-{len(running)}.db"))
        settings = AnalyticsSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, **overrides)
        app = AnalyticsApp(settings)
        server = MeshServer(app, settings)
        await server.start()
        channel = dial(f"127.0.0.1:{server.port}")
        analytics = Analytics(server, app, settings, channel, analytics_service_pb2_grpc.AnalyticsServiceStub(channel))
        running.append(analytics)
        return analytics

    yield make
    for analytics in running:
        await analytics.channel.close()
        await analytics.server.stop(0)


@pytest.fixture
async def analytics(make_analytics: AnalyticsFactory) -> Analytics:
    """One AnalyticsService on a fresh SQLite file."""
    return await make_analytics()
