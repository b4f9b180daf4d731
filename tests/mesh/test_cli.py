"""The voicebot command's run-time commands: --version and probe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from mesh import MeshServer
from orchestrator.cli import main
from tests.conftest import free_port
from tests.mesh.apps import ProbeApp, settings


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("voicebot, version ")


async def test_probe_exits_zero_when_serving_and_one_when_nothing_answers() -> None:
    async with MeshServer(ProbeApp(), settings()) as server:
        serving = await asyncio.to_thread(CliRunner().invoke, main, ["probe", f"127.0.0.1:{server.port}"])
        entry = await asyncio.to_thread(
            CliRunner().invoke, main, ["probe", f"127.0.0.1:{server.port}", "--service", "voicebot.v1.SttService"]
        )
    dead = await asyncio.to_thread(CliRunner().invoke, main, ["probe", f"127.0.0.1:{free_port()}", "--timeout", "0.5"])
    assert (serving.exit_code, serving.output.strip()) == (0, "SERVING")
    assert entry.exit_code == 0
    assert dead.exit_code == 1
    assert "UNREACHABLE" in dead.output


async def test_probe_speaks_mutual_tls_with_the_services_own_certificate(tmp_path: Path) -> None:
    from scripts.make_dev_certs import make_certs

    make_certs(tmp_path)
    files = {name: str(tmp_path / f"{name}.pem") for name in ("ca", "server", "server-key")}
    mtls = settings(
        tls_cert_file=files["server"], tls_key_file=files["server-key"], tls_ca_file=files["ca"], tls_client_auth=True
    )
    async with MeshServer(ProbeApp(), mtls) as server:
        target = f"localhost:{server.port}"
        tls_args = ["--tls-ca", files["ca"], "--tls-cert", files["server"], "--tls-key", files["server-key"]]
        secure = await asyncio.to_thread(CliRunner().invoke, main, ["probe", target, *tls_args])
        plain = await asyncio.to_thread(CliRunner().invoke, main, ["probe", target, "--timeout", "1"])
    assert (secure.exit_code, secure.output.strip()) == (0, "SERVING")
    assert plain.exit_code == 1
