"""Fixtures for the deployment checks: the real helm and docker-compose binaries, rendered manifests.

Both tools live in ``.tools/bin`` (``scripts/install_tools.py``, run by ``make test``). A test that
needs one installs it when it is missing and skips, naming why, only when that install fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "voicebot"
TOOLS = ROOT / ".tools" / "bin"
PROFILES = ("cpu", "gpu")
KUBERNETES_VERSION = "1.30.0"
# vLLM serving Mistral with tool calls and runtime LoRA adapters, in compose and in the chart.
VLLM_FLAGS = (
    "--model=mistralai/Mistral-7B-Instruct-v0.3",
    "--enable-lora",
    "--enable-auto-tool-choice",
    "--tool-call-parser=mistral",
    "--tokenizer-mode=mistral",
)


def _tool(name: str, installer: str) -> Path:
    path = TOOLS / name
    if path.exists():
        return path
    try:
        from scripts import install_tools

        getattr(install_tools, installer)()
    except (Exception, SystemExit) as exc:  # any failure to install: skip, saying why
        pytest.skip(f"{name} is not in .tools/bin and could not be installed ({installer}): {exc}")
    if not path.exists():
        pytest.skip(f"{name} is not in .tools/bin and {installer} installs none on this platform")
    return path


@pytest.fixture(scope="session")
def helm() -> Path:
    """helm v3 from .tools/bin."""
    return _tool("helm", "install_helm")


@pytest.fixture(scope="session")
def compose() -> Path:
    """Docker Compose v2 (docker-compose) from .tools/bin."""
    return _tool("docker-compose", "install_compose")


def clean_env() -> dict[str, str]:
    """An environment without VOICEBOT_*, VLLM_*, HF_* or COMPOSE_* variables, so the files speak for themselves."""
    prefixes = ("VOICEBOT_", "VLLM_", "HF_", "COMPOSE_", "KUBECONFIG", "HELM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["HELM_CACHE_HOME"] = str(ROOT / ".tools" / "helm-home" / "cache")
    env["HELM_CONFIG_HOME"] = str(ROOT / ".tools" / "helm-home" / "config")
    env["HELM_DATA_HOME"] = str(ROOT / ".tools" / "helm-home" / "data")
    return env


def run_tool(args: Sequence[str | Path], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool with a clean environment; never raises on a non-zero exit."""
    return subprocess.run(
        [str(a) for a in args], input=stdin, capture_output=True, text=True, env=clean_env(), cwd=ROOT, timeout=120
    )


def values_args(profile: str | None, sets: Sequence[str] = ()) -> list[str]:
    """helm arguments selecting a ci/ profile and --set overrides."""
    args: list[str] = []
    if profile:
        args += ["-f", str(CHART / "ci" / f"{profile}-values.yaml")]
    for item in sets:
        args += ["--set", item]
    return args


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """Render the chart (``helm template``) and return its manifests; fails the test on a render error."""

    def _render(profile: str | None = None, *sets: str) -> list[dict[str, Any]]:
        result = run_tool([helm, "template", "voicebot", CHART, "--namespace", "bank", *values_args(profile, sets)])
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The manifests of one kind, by metadata.name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
