"""Bearer tokens, admin RPCs, TLS and mutual TLS, end to end over loopback."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import DialOptions, MeshServer, dial
from scripts.make_dev_certs import make_certs
from tests.mesh.apps import ProbeApp, settings
from voicebot.v1 import cache_service_pb2, cache_service_pb2_grpc

LOOKUP = cache_service_pb2.LookupRequest(query="hi")


async def _lookup(target: str, options: DialOptions) -> str:
    async with dial(target, options) as channel:
        return (await cache_service_pb2_grpc.CacheServiceStub(channel).Lookup(LOOKUP)).answer


async def _code(coro: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await coro  # type: ignore[misc]
    return failure.value.code()


async def test_missing_or_wrong_token_is_unauthenticated_and_health_stays_open() -> None:
    async with MeshServer(ProbeApp(), settings(auth_token="s3cret")) as server:
        target = f"127.0.0.1:{server.port}"
        assert await _code(_lookup(target, DialOptions())) == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(_lookup(target, DialOptions(token="nope"))) == grpc.StatusCode.UNAUTHENTICATED
        assert await _lookup(target, DialOptions(token="s3cret")) == "hi"
        async with dial(target) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_admin_rpc_needs_the_admin_token(tmp_path: Path) -> None:
    admin_file = tmp_path / "admin-token"
    admin_file.write_text("admin-s3cret\n")
    async with MeshServer(ProbeApp(), settings(auth_token="s3cret", admin_token_file=str(admin_file))) as server:
        target = f"127.0.0.1:{server.port}"

        async def clear(token: str) -> int:
            async with dial(target, DialOptions(token=token)) as channel:
                stub = cache_service_pb2_grpc.CacheServiceStub(channel)
                return (await stub.Clear(cache_service_pb2.ClearRequest())).removed_count

        assert await _code(clear("s3cret")) == grpc.StatusCode.PERMISSION_DENIED
        assert await _code(clear("")) == grpc.StatusCode.UNAUTHENTICATED
        assert await clear("admin-s3cret") == 7


async def test_tls_round_trip(tmp_path: Path) -> None:
    make_certs(tmp_path)
    tls = settings(tls_cert_file=str(tmp_path / "server.pem"), tls_key_file=str(tmp_path / "server-key.pem"))
    async with MeshServer(ProbeApp(), tls) as server:
        target = f"localhost:{server.port}"
        assert await _lookup(target, DialOptions(tls_ca_file=str(tmp_path / "ca.pem"))) == "hi"
        assert await _code(_lookup(target, DialOptions())) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate(tmp_path: Path) -> None:
    make_certs(tmp_path)
    mtls = settings(
        tls_cert_file=str(tmp_path / "server.pem"),
        tls_key_file=str(tmp_path / "server-key.pem"),
        tls_ca_file=str(tmp_path / "ca.pem"),
        tls_client_auth=True,
    )
    async with MeshServer(ProbeApp(), mtls) as server:
        target = f"localhost:{server.port}"
        without_cert = DialOptions(tls_ca_file=str(tmp_path / "ca.pem"))
        with_cert = DialOptions(
            tls_ca_file=str(tmp_path / "ca.pem"),
            tls_cert_file=str(tmp_path / "client.pem"),
            tls_key_file=str(tmp_path / "client-key.pem"),
        )
        assert await _code(_lookup(target, without_cert)) == grpc.StatusCode.UNAVAILABLE
        assert await _lookup(target, with_cert) == "hi"
        assert await _lookup(target, DialOptions.from_settings(mtls)) == "hi"
