"""Fixtures of the CLI tests: real cache, analytics and llm services on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from cache_svc.app import CacheApp
from cache_svc.config import CacheSettings
from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from mesh import MeshServer, ServiceSettings
from mesh.server import ServicerApp

Serve = Callable[..., Awaitable[MeshServer]]


async def _serve(app: ServicerApp, settings: ServiceSettings, started: list[MeshServer]) -> MeshServer:
    server = MeshServer(app, settings)
    await server.start()
    started.append(server)
    return server


def _settings(cls: type[Any], overrides: dict[str, Any]) -> Any:
    return cls.from_env(host="127.0.0.1", port=0, metrics_port=-1, **overrides)


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[dict[str, Serve]]:
    """Start real cache, analytics and llm services (settings overridable); all stop after the test."""
    started: list[MeshServer] = []

    async def cache(**overrides: Any) -> MeshServer:
        settings = _settings(CacheSettings, overrides)
        return await _serve(CacheApp(settings), settings, started)

    async def analytics(**overrides: Any) -> MeshServer:
        overrides.setdefault("db_path", str(tmp_path / f"analytics-{len(started)}.db"))
        settings = _settings(AnalyticsSettings, overrides)
        return await _serve(AnalyticsApp(settings), settings, started)

    async def llm(**overrides: Any) -> MeshServer:
        overrides.setdefault("engine", "banking")
        settings = _settings(LlmSettings, overrides)
        return await _serve(LlmApp(settings), settings, started)

    yield {"cache": cache, "analytics": analytics, "llm": llm}
    for server in started:
        await server.stop(0)
