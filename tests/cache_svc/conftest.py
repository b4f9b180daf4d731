"""Fixtures of the cache_svc tests: real CacheService servers on loopback, dialled over gRPC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from cache_svc.app import CacheApp
from cache_svc.config import CacheSettings
from mesh import DialOptions, MeshServer, dial
from voicebot.v1 import cache_service_pb2 as pb
from voicebot.v1 import cache_service_pb2_grpc

DATA = Path(__file__).parent / "data"


def read_jsonl(name: str) -> list[dict[str, str]]:
    """Rows of a JSONL file under tests/cache_svc/data/."""
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def scope(tenant: str = "bank", language_code: str = "en-US", intent: str = "faq") -> pb.CacheScope:
    return pb.CacheScope(tenant=tenant, language_code=language_code, intent=intent)


@dataclass
class RunningCache:
    """One CacheService replica and a stub dialled to it."""

    server: MeshServer
    app: CacheApp
    channel: grpc.aio.Channel
    stub: cache_service_pb2_grpc.CacheServiceStub

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(0)

    async def store(self, query: str, answer: str, **kwargs: Any) -> pb.StoreResponse:
        kwargs.setdefault("scope", scope())
        return await self.stub.Store(pb.StoreRequest(query=query, answer=answer, **kwargs))

    async def lookup(self, query: str, **kwargs: Any) -> pb.LookupResponse:
        kwargs.setdefault("scope", scope())
        return await self.stub.Lookup(pb.LookupRequest(query=query, **kwargs))


StartCache = Callable[..., Awaitable[RunningCache]]


@pytest.fixture
async def start_cache() -> AsyncIterator[StartCache]:
    """Start CacheService replicas with settings overrides; all are stopped after the test."""
    running: list[RunningCache] = []

    async def start(*, token: str = "", **overrides: Any) -> RunningCache:
        settings = CacheSettings.from_env(host="127.0.0.1", port=0, metrics_port=-1, **overrides)
        app = CacheApp(settings)
        server = MeshServer(app, settings)
        await server.start()
        channel = dial(f"127.0.0.1:{server.port}", DialOptions(token=token))
        cache = RunningCache(server, app, channel, cache_service_pb2_grpc.CacheServiceStub(channel))
        running.append(cache)
        return cache

    yield start
    for cache in running:
        await cache.stop()


@pytest.fixture
async def cache(start_cache: StartCache) -> RunningCache:
    """One replica on the defaults: hashing embedder, flat index, memory storage."""
    return await start_cache()
