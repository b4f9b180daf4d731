"""The whole mesh under mutual TLS and tokens: calls, refusals, admin RPCs and the CLI, as processes.

One setting set turns it on mesh-wide: every service serves with ``VOICEBOT_TLS_CERT_FILE``/``KEY_FILE``,
demands client certificates signed by ``VOICEBOT_TLS_CA_FILE`` (``VOICEBOT_TLS_CLIENT_AUTH=true``) and
dials its peers presenting its own certificate; every RPC but health needs ``VOICEBOT_AUTH_TOKEN`` and
the admin RPCs need ``VOICEBOT_ADMIN_TOKEN``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from click.testing import CliRunner, Result

from mesh import DialOptions, dial
from mesh.tls import channel_credentials
from orchestrator.caller import caller_format, place_call
from orchestrator.cli import main
from orchestrator.launcher import LocalMesh
from scripts.make_dev_certs import make_certs
from tests.conftest import free_port
from tests.integration.conftest import mesh_env
from voicebot.catalog import SERVICES
from voicebot.v1 import (
    cache_service_pb2,
    cache_service_pb2_grpc,
    llm_service_pb2,
    llm_service_pb2_grpc,
    orchestrator_service_pb2_grpc,
)
from voicebot.v1 import orchestrator_service_pb2 as pb

pytestmark = pytest.mark.slow

TOKEN = "caller-token-for-tests"
ADMIN = "admin-token-for-tests"


@dataclass(frozen=True)
class SecureMesh:
    """A running mesh under mutual TLS and the certificates that reach it."""

    mesh: LocalMesh
    certs: Path

    def target(self, name: str) -> str:
        """host:port of service ``name``."""
        return self.mesh.child(name).target

    def options(self, token: str = TOKEN, client_cert: bool = True) -> DialOptions:
        """Dial options with the CA, the client certificate (unless not ``client_cert``) and ``token``."""
        return DialOptions(
            token=token,
            tls_ca_file=str(self.certs / "ca.pem"),
            tls_cert_file=str(self.certs / "client.pem") if client_cert else "",
            tls_key_file=str(self.certs / "client-key.pem") if client_cert else "",
            tls=True,
        )


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureMesh]:
    """All six services as processes with mutual TLS and tokens on, probed over mutual TLS."""
    workdir = tmp_path_factory.mktemp("secure-mesh")
    certs = workdir / "certs"
    make_certs(certs)
    env = mesh_env(
        workdir,
        VOICEBOT_TLS_CERT_FILE=str(certs / "server.pem"),
        VOICEBOT_TLS_KEY_FILE=str(certs / "server-key.pem"),
        VOICEBOT_TLS_CA_FILE=str(certs / "ca.pem"),
        VOICEBOT_TLS_CLIENT_AUTH="true",
        VOICEBOT_AUTH_TOKEN=TOKEN,
        VOICEBOT_ADMIN_TOKEN=ADMIN,
    )
    probe = channel_credentials(str(certs / "ca.pem"), str(certs / "client.pem"), str(certs / "client-key.pem"))
    mesh = LocalMesh(
        ports={info.name: free_port() for info in SERVICES},
        env=env,
        log_dir=workdir / "logs",
        probe_credentials=probe,
    )
    mesh.start()
    try:
        mesh.wait_serving(240)
        yield SecureMesh(mesh, certs)
    finally:
        mesh.stop()


async def _code(awaitable: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await awaitable
    return failure.value.code(), failure.value.details() or ""


async def test_a_text_and_a_voice_call_work_end_to_end_under_mutual_tls(
    secure: SecureMesh, speech: dict[str, np.ndarray]
) -> None:
    async with dial(secure.target("orchestrator"), secure.options()) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        typed = await place_call(
            stub, pb.SessionConfig(text_only=True), texts=["what are your branch hours"], realtime=False
        )
        spoken = await place_call(
            stub, pb.SessionConfig(input_format=caller_format()), caller_audio=[speech["hours"]], realtime=False
        )
        status = await stub.GetStatus(pb.GetStatusRequest())
    for record in (typed, spoken):
        assert record.event_types()[-1] == "CALL_ENDED"
        assert "downtown" in record.bot_text.lower() or "hours" in record.bot_text.lower(), record.bot_text
    assert spoken.bot_audio  # stt and tts were reached over mutual TLS
    # The orchestrator reached every dependency with its own certificate and the token.
    assert [c.state for c in status.components] == [pb.SERVING_STATE_SERVING] * 6, status


async def test_no_client_certificate_is_unavailable_no_token_is_unauthenticated(secure: SecureMesh) -> None:
    request = pb.GetStatusRequest()
    async with dial(secure.target("orchestrator"), secure.options(client_cert=False)) as channel:
        code, _ = await _code(orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel).GetStatus(request))
        assert code == grpc.StatusCode.UNAVAILABLE
    async with dial(secure.target("orchestrator")) as channel:  # plaintext
        code, _ = await _code(orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel).GetStatus(request))
        assert code == grpc.StatusCode.UNAVAILABLE
    for token in ("", "wrong-token"):
        async with dial(secure.target("orchestrator"), secure.options(token=token)) as channel:
            code, _ = await _code(orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel).GetStatus(request))
            assert code == grpc.StatusCode.UNAUTHENTICATED
    async with dial(secure.target("cache"), secure.options(token="")) as channel:
        lookup = cache_service_pb2_grpc.CacheServiceStub(channel).Lookup(cache_service_pb2.LookupRequest(query="hi"))
        code, _ = await _code(lookup)
        assert code == grpc.StatusCode.UNAUTHENTICATED


async def _warm(channel: grpc.aio.Channel) -> Any:
    async def pairs() -> Any:
        scope = cache_service_pb2.CacheScope(tenant="sec-test", language_code="en-US")
        yield cache_service_pb2.WarmRequest(query="do you sell gift cards", answer="No, we do not.", scope=scope)

    return await cache_service_pb2_grpc.CacheServiceStub(channel).Warm(pairs())


ADMIN_RPCS: dict[str, tuple[str, Callable[[grpc.aio.Channel], Awaitable[Any]]]] = {
    "cache Clear": (
        "cache",
        lambda ch: cache_service_pb2_grpc.CacheServiceStub(ch).Clear(
            cache_service_pb2.ClearRequest(scope=cache_service_pb2.CacheScope(tenant="sec-test", language_code="en-US"))
        ),
    ),
    "cache Warm": ("cache", _warm),
    "cache Invalidate": (
        "cache",
        lambda ch: cache_service_pb2_grpc.CacheServiceStub(ch).Invalidate(
            cache_service_pb2.InvalidateRequest(entry_id="no-such-entry")
        ),
    ),
    "llm LoadAdapter": (
        "llm",
        lambda ch: llm_service_pb2_grpc.LlmServiceStub(ch).LoadAdapter(
            llm_service_pb2.LoadAdapterRequest(name="support-v2", path="/adapters/support-v2")
        ),
    ),
    "llm UnloadAdapter": (
        "llm",
        lambda ch: llm_service_pb2_grpc.LlmServiceStub(ch).UnloadAdapter(
            llm_service_pb2.UnloadAdapterRequest(name="support-v2")
        ),
    ),
    "orchestrator EndSession": (
        "orchestrator",
        lambda ch: orchestrator_service_pb2_grpc.OrchestratorServiceStub(ch).EndSession(
            pb.EndSessionRequest(session_id="no-such-session")
        ),
    ),
}
# What the service answers once the admin token is accepted (the RPC ran; its own outcome).
ADMITTED = {
    "llm LoadAdapter": grpc.StatusCode.FAILED_PRECONDITION,  # the embedded engine serves no adapters
    "orchestrator EndSession": grpc.StatusCode.NOT_FOUND,
}


@pytest.mark.parametrize("rpc", list(ADMIN_RPCS))
async def test_admin_rpcs_need_the_admin_token(secure: SecureMesh, rpc: str) -> None:
    service, call = ADMIN_RPCS[rpc]
    async with dial(secure.target(service), secure.options()) as channel:
        code, message = await _code(call(channel))
        assert code == grpc.StatusCode.PERMISSION_DENIED, message
    async with dial(secure.target(service), secure.options(token=ADMIN)) as channel:
        if rpc in ADMITTED:
            code, message = await _code(call(channel))
            assert code == ADMITTED[rpc], message
        else:
            await call(channel)


async def test_end_session_with_the_admin_token_ends_a_live_call(secure: SecureMesh) -> None:
    async with dial(secure.target("orchestrator"), secure.options()) as channel:
        stub = orchestrator_service_pb2_grpc.OrchestratorServiceStub(channel)
        call = stub.Converse(timeout=60)
        await call.write(pb.ConverseRequest(config=pb.SessionConfig(text_only=True)))
        first = await call.read()
        session_id = first.event.session_id
        async with dial(secure.target("orchestrator"), secure.options(token=ADMIN)) as admin:
            ended = await orchestrator_service_pb2_grpc.OrchestratorServiceStub(admin).EndSession(
                pb.EndSessionRequest(session_id=session_id, reason="security test")
            )
        assert ended.was_active
        responses = [response async for response in call]
        assert responses[-1].event.type == pb.CALL_EVENT_TYPE_CALL_ENDED, responses[-1]


async def _voicebot(secure: SecureMesh, *args: str, token: str = TOKEN, client_cert: bool = True) -> Result:
    certs = secure.certs
    flags = ["--tls-ca", str(certs / "ca.pem"), "--token", token]
    if client_cert:
        flags += ["--tls-cert", str(certs / "client.pem"), "--tls-key", str(certs / "client-key.pem")]
    flags += [f"--{info.name}={secure.target(info.name)}" for info in SERVICES]
    runner = CliRunner(env={"VOICEBOT_CONFIG": "/dev/null", "VOICEBOT_TOKEN": None, "VOICEBOT_TLS_CA_FILE": None})
    return await asyncio.to_thread(runner.invoke, main, [*flags, *args])


async def test_the_cli_speaks_mutual_tls_and_tokens(secure: SecureMesh) -> None:
    health = await _voicebot(secure, "orchestrator-health")
    assert health.exit_code == 0, health.output
    refused = await _voicebot(secure, "cache-manager", "clear", "--yes")
    assert refused.exit_code == 1, refused.output
    assert "needs the admin token" in refused.stderr, refused.output
    cleared = await _voicebot(secure, "cache-manager", "clear", "--yes", token=ADMIN)
    assert cleared.exit_code == 0, cleared.output
    assert "removed" in cleared.output, cleared.output
    no_cert = await _voicebot(secure, "orchestrator-health", client_cert=False)
    assert no_cert.exit_code != 0, no_cert.output
