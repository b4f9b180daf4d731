"""The whole mesh as real processes on free loopback ports, and helpers to call it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from orchestrator.launcher import LocalMesh
from tests.conftest import free_port
from voicebot.catalog import BY_NAME, SERVICES


def mesh_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for a test mesh: metrics off, state in ``workdir``, hubs offline."""
    env = {f"{info.env_prefix}METRICS_PORT": "-1" for info in SERVICES}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "VOICEBOT_ANALYTICS_DB_PATH": str(workdir / "analytics.sqlite3"),
            "VOICEBOT_ORCHESTRATOR_EVENTS_SPILL_DIR": str(workdir / "spill"),
            "VOICEBOT_GRACE_S": "1",
        }
    )
    env.update(extra)
    return env


def start_mesh(workdir: Path, **extra: str) -> LocalMesh:
    """Start all six services on free ports and wait until they are SERVING."""
    mesh = LocalMesh(
        ports={info.name: free_port() for info in SERVICES}, env=mesh_env(workdir, **extra), log_dir=workdir / "logs"
    )
    mesh.start()
    try:
        mesh.wait_serving(240)
    except BaseException:
        mesh.stop()
        raise
    return mesh


def start_second_orchestrator(first: LocalMesh, workdir: Path, **extra: str) -> LocalMesh:
    """Another orchestrator replica on a free port, using ``first``'s other five services; SERVING when returned."""
    ports = {child.info.name: child.port for child in first.children}
    ports["orchestrator"] = free_port()
    second = LocalMesh(
        services=(BY_NAME["orchestrator"],),
        ports=ports,
        env=mesh_env(workdir, **extra),
        log_dir=workdir / "logs",
    )
    second.start()
    try:
        second.wait_serving(120)
    except BaseException:
        second.stop()
        raise
    return second


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """One mesh shared by the tests that do not stop its services."""
    running = start_mesh(tmp_path_factory.mktemp("mesh"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def speech() -> dict[str, np.ndarray]:
    """Caller utterances spoken by the Piper voice, as 16 kHz mono float32."""
    from orchestrator.demo import speak_lines

    lines = {
        "loan": "I'd like a quote for a loan of twenty thousand dollars over five years at six percent.",
        "hours": "What are the opening hours of your downtown branch?",
        "stop": "Wait, stop please. I have a different question about my card.",
        "okay": "Okay.",
        "goodbye": "That's all, goodbye.",
    }
    return dict(zip(lines, speak_lines(tuple(lines.values())), strict=True))
