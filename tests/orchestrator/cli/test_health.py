"""voicebot orchestrator-health against the whole mesh on loopback, every service real.

One mesh serves the module: stt (faster-whisper tiny.en), tts (Piper), llm (banking engine),
cache, analytics and the orchestrator. Tests that need a dependency down start a second
orchestrator whose stt target is a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from analytics_svc.app import AnalyticsApp
from analytics_svc.config import AnalyticsSettings
from cache_svc.app import CacheApp
from cache_svc.config import CacheSettings
from llm_svc.app import LlmApp
from llm_svc.config import LlmSettings
from mesh import MeshServer
from orchestrator.app import OrchestratorApp
from orchestrator.cli.health import DEGRADED, HEALTHY, UNREACHABLE
from orchestrator.config import OrchestratorSettings
from stt_svc.app import SttApp
from stt_svc.config import SttSettings
from tests.conftest import free_port
from tests.orchestrator.cli.helpers import VOICEBOT_PROCESS, one_line_error, process_env, target, usage_error, voicebot
from tts_svc.app import TtsApp
from tts_svc.config import TtsSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEPENDENCIES = ("stt", "tts", "llm", "cache", "analytics")


def loopback(cls: type[Any], **overrides: Any) -> Any:
    return cls.from_env(host="127.0.0.1", port=0, metrics_port=-1, **overrides)


class Mesh:
    """The six services, started in dependency order; ``orchestrator()`` starts more orchestrators."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stack = AsyncExitStack()
        self.targets: dict[str, str] = {}
        self.main = ""
        self.dead_stt = f"127.0.0.1:{free_port()}"
        self._degraded = ""

    async def serve(self, app: Any, settings: Any) -> MeshServer:
        return await self.stack.enter_async_context(MeshServer(app, settings))

    async def start(self) -> None:
        for name, app_type, settings in (
            ("stt", SttApp, loopback(SttSettings)),
            ("tts", TtsApp, loopback(TtsSettings, engine="piper")),
            ("llm", LlmApp, loopback(LlmSettings, engine="banking")),
            ("cache", CacheApp, loopback(CacheSettings)),
            ("analytics", AnalyticsApp, loopback(AnalyticsSettings, db_path=str(self.workdir / "analytics.db"))),
        ):
            self.targets[name] = target(await self.serve(app_type(settings), settings))
        self.main = target(await self.orchestrator())

    async def orchestrator(self, **targets: str) -> MeshServer:
        """An orchestrator on this mesh's dependencies, some replaced by ``targets``."""
        chosen = {**self.targets, **targets}
        settings = loopback(
            OrchestratorSettings,
            **{f"{name}_target": chosen[name] for name in DEPENDENCIES},
            accounts_db=str(self.workdir / "accounts.db"),
            events_spill_dir=str(self.workdir / "spill"),
            replica="test-replica",
        )
        return await self.serve(OrchestratorApp(settings), settings)

    async def degraded(self) -> str:
        """An orchestrator whose stt target is a port where nothing listens (started once)."""
        if not self._degraded:
            self._degraded = target(await self.orchestrator(stt=self.dead_stt))
        return self._degraded


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    running = Mesh(tmp_path_factory.mktemp("mesh"))
    async with running.stack:
        await running.start()
        yield running


def rows(output: str) -> dict[str, list[str]]:
    """Table rows by service name (the lines between the header and the summary)."""
    lines = output.strip().splitlines()
    return {line.split()[0]: line.split() for line in lines[1:-1]}


async def test_every_service_serving_exits_zero(mesh: Mesh) -> None:
    result = await voicebot("--orchestrator", mesh.main, "orchestrator-health")
    assert result.exit_code == HEALTHY, result.output
    table = rows(result.stdout)
    assert list(table) == ["orchestrator", *DEPENDENCIES]
    assert all(row[2] == "SERVING" for row in table.values())
    assert table["orchestrator"][1] == mesh.main
    assert table["stt"][1] == mesh.targets["stt"]
    assert table["stt"][4] == "faster_whisper"
    assert table["llm"][4] == "banking"
    assert "6/6 serving · replica test-replica · 0 active calls" in result.stdout


async def test_json_is_the_status_message(mesh: Mesh) -> None:
    result = await voicebot("--orchestrator", mesh.main, "orchestrator-health", "--json")
    assert result.exit_code == HEALTHY, result.output
    status = json.loads(result.stdout)
    assert status["replica"] == "test-replica"
    states = {c["service"]: c["state"] for c in status["components"]}
    assert states == dict.fromkeys(["orchestrator", *DEPENDENCIES], "SERVING_STATE_SERVING")


async def test_a_dependency_down_exits_three_and_names_it(mesh: Mesh) -> None:
    degraded = await mesh.degraded()
    result = await voicebot("--orchestrator", degraded, "orchestrator-health")
    as_json = await voicebot("--orchestrator", degraded, "--json", "orchestrator-health")
    assert result.exit_code == DEGRADED, result.output
    table = rows(result.stdout)
    assert table["stt"][1:3] == [mesh.dead_stt, "UNREACHABLE"]
    assert table["tts"][2] == "SERVING"
    assert "5/6 serving" in result.stdout
    assert as_json.exit_code == DEGRADED
    stt = next(c for c in json.loads(as_json.stdout)["components"] if c["service"] == "stt")
    assert stt["state"] == "SERVING_STATE_UNREACHABLE"
    assert stt["detail"]


async def test_orchestrator_unreachable_is_one_line() -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = await voicebot("--orchestrator", dead, "orchestrator-health")
    one_line_error(result, f"nothing answers at {dead}", "voicebot up")
    assert UNREACHABLE == 1


async def test_watch_redraws_and_exits_with_the_last_state(mesh: Mesh) -> None:
    healthy = await voicebot(
        "--orchestrator", mesh.main, "orchestrator-health", "--watch", "--interval", "0.1", "--count", "2"
    )
    dead = f"127.0.0.1:{free_port()}"
    down = await voicebot("--orchestrator", dead, "orchestrator-health", "--watch", "--interval", "0.1", "--count", "2")
    lines = await voicebot(
        "--orchestrator", mesh.main, "orchestrator-health", "--watch", "--interval", "0.1", "--count", "3", "--json"
    )
    assert healthy.exit_code == HEALTHY, healthy.output
    assert healthy.stdout.count("voicebot orchestrator-health · every 0.1s") == 2
    assert healthy.stdout.count("6/6 serving") == 2
    assert down.exit_code == UNREACHABLE
    assert down.stderr.count(f"nothing answers at {dead}") == 2
    assert "Traceback" not in down.output
    assert lines.exit_code == HEALTHY
    assert [json.loads(line)["replica"] for line in lines.stdout.splitlines()] == ["test-replica"] * 3


async def test_ctrl_c_ends_a_watch_with_the_last_state(mesh: Mesh) -> None:
    degraded = await mesh.degraded()
    healthy_code = await asyncio.to_thread(interrupt_watch, mesh.main)
    degraded_code = await asyncio.to_thread(interrupt_watch, degraded)
    assert healthy_code == HEALTHY
    assert degraded_code == DEGRADED


def interrupt_watch(orchestrator: str) -> int:
    """Run ``voicebot orchestrator-health --watch`` in a process, press Ctrl-C after its first table."""
    args = ["--orchestrator", orchestrator, "orchestrator-health", "--watch", "--interval", "0.2"]
    with subprocess.Popen(
        [*VOICEBOT_PROCESS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=process_env()
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if "serving · replica" in line:
                break
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")
        return process.returncode


async def test_bad_arguments_are_usage_errors() -> None:
    usage_error(await voicebot("orchestrator-health", "--interval", "0"), "Invalid value for '--interval'")
    usage_error(await voicebot("orchestrator-health", "--count", "-1"), "Invalid value for '--count'")
    usage_error(await voicebot("orchestrator-health", "extra"), "unexpected extra argument")


async def test_unauthenticated(mesh: Mesh, tmp_path: Path) -> None:
    settings = loopback(
        OrchestratorSettings,
        **{f"{name}_target": mesh.targets[name] for name in DEPENDENCIES},
        accounts_db=str(tmp_path / "accounts.db"),
        events_spill_dir=str(tmp_path / "spill"),
        auth_token="secret",
    )
    guarded = target(await mesh.serve(OrchestratorApp(settings), settings))
    refused = await voicebot("--orchestrator", guarded, "orchestrator-health")
    allowed = await voicebot("--orchestrator", guarded, "--token", "secret", "orchestrator-health")
    one_line_error(refused, f"{guarded} refused the call", "--token")
    # The dependencies run without auth here; a token they do not expect is ignored.
    assert allowed.exit_code == HEALTHY, allowed.output
