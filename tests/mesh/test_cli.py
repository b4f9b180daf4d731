"""The voicebot command's run-time commands: --version and probe."""

from __future__ import annotations

import asyncio

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
