"""docker-compose.yml, checked by the real Docker Compose v2 (``config``) for the CPU and GPU profiles.

``docker-compose config`` validates against the compose specification and resolves profiles,
anchors, interpolation and ``depends_on``; no Docker engine is needed for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, VLLM_FLAGS, run_tool
from voicebot.catalog import SERVICES

GPU_ENV = ROOT / "deploy" / "compose" / "gpu.env"
PROFILES = {"cpu": [], "gpu": ["--env-file", str(GPU_ENV)]}


def seconds(duration: str) -> float:
    """A Go duration as compose prints it ("1m0s", "30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|h|m|s)", duration))


def config(compose: Path, *args: str) -> dict[str, Any]:
    result = run_tool([compose, "-f", ROOT / "docker-compose.yml", *args, "config"])
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


@pytest.mark.parametrize("profile", PROFILES)
def test_compose_config_is_valid(compose: Path, profile: str) -> None:
    result = run_tool([compose, "-f", ROOT / "docker-compose.yml", *PROFILES[profile], "config", "-q"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_compose_config_is_also_valid_with_the_gpu_profile_flag(compose: Path) -> None:
    result = run_tool([compose, "-f", ROOT / "docker-compose.yml", "--profile", "gpu", "config", "-q"])
    assert result.returncode == 0, result.stderr


def test_the_validator_rejects_a_broken_file(compose: Path, tmp_path: Path) -> None:
    broken = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    broken["services"]["stt"]["healthcheck"]["retries"] = "many"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = run_tool([compose, "-f", path, "config", "-q"])
    assert result.returncode != 0
    assert "retries" in result.stderr


@pytest.fixture(scope="module")
def cpu(compose: Path) -> dict[str, Any]:
    return config(compose)


@pytest.fixture(scope="module")
def gpu(compose: Path) -> dict[str, Any]:
    return config(compose, *PROFILES["gpu"])


def test_cpu_profile_runs_the_six_services_and_redis(cpu: dict[str, Any]) -> None:
    assert set(cpu["services"]) == {s.name for s in SERVICES} | {"redis"}
    assert cpu["services"]["llm"]["environment"]["VOICEBOT_LLM_ENGINE"] == "banking"


def test_gpu_profile_adds_vllm_and_switches_llm_to_it(gpu: dict[str, Any]) -> None:
    assert set(gpu["services"]) == {s.name for s in SERVICES} | {"redis", "vllm"}
    llm = gpu["services"]["llm"]
    assert llm["environment"]["VOICEBOT_LLM_ENGINE"] == "vllm"
    assert llm["environment"]["VOICEBOT_LLM_VLLM_BASE_URL"] == "http://vllm:8000"
    assert llm["depends_on"]["vllm"]["condition"] == "service_healthy"


def test_vllm_serves_mistral_with_tool_calls_lora_and_a_gpu(gpu: dict[str, Any]) -> None:
    vllm = gpu["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert vllm["profiles"] == ["gpu"]
    command = vllm["command"]
    assert set(VLLM_FLAGS) <= set(command)
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert device["driver"] == "nvidia"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_service_has_a_grpc_health_check_on_its_port(compose: Path, profile: str) -> None:
    services = config(compose, *PROFILES[profile])["services"]
    for info in SERVICES:
        service = services[info.name]
        assert service["healthcheck"]["test"] == ["CMD", "voicebot", "probe", f"127.0.0.1:{info.default_port}"]
        assert service["environment"][f"VOICEBOT_{info.name.upper()}_PORT"] == str(info.default_port)
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_orchestrator_waits_for_healthy_dependencies(cpu: dict[str, Any]) -> None:
    services = cpu["services"]
    depends = services["orchestrator"]["depends_on"]
    assert set(depends) == {"stt", "tts", "llm", "cache", "analytics", "redis"}
    assert all(d["condition"] == "service_healthy" for d in depends.values())
    assert services["cache"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_peers_dial_each_other_by_service_name(cpu: dict[str, Any]) -> None:
    env = cpu["services"]["orchestrator"]["environment"]
    for info in SERVICES:
        assert env[f"VOICEBOT_{info.name.upper()}_TARGET"] == f"{info.name}:{info.default_port}"


def test_only_the_orchestrator_is_published_and_on_the_front_network(gpu: dict[str, Any]) -> None:
    services = gpu["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"orchestrator"}
    (port,) = services["orchestrator"]["ports"]
    assert (port["target"], port["published"], port["host_ip"]) == (50051, "50051", "127.0.0.1")
    assert set(services["orchestrator"]["networks"]) == {"front", "back"}
    for name, service in services.items():
        if name not in ("orchestrator", "vllm"):
            assert set(service["networks"]) == {"back"}, name
    assert gpu["networks"]["back"]["internal"] is True


def test_named_volumes_hold_models_sqlite_and_redis(gpu: dict[str, Any]) -> None:
    assert {"models", "analytics-data", "redis-data"} <= set(gpu["volumes"])
    services = gpu["services"]

    def mounts(name: str) -> dict[str, dict[str, Any]]:
        return {v["source"]: v for v in services[name].get("volumes", [])}

    assert mounts("analytics")["analytics-data"]["target"] == "/data"
    assert mounts("redis")["redis-data"]["target"] == "/data"
    assert mounts("vllm")["models"]["target"] == "/models"
    for name in ("stt", "tts", "cache"):
        assert mounts(name)["models"]["read_only"] is True


def test_every_service_has_resource_limits(gpu: dict[str, Any]) -> None:
    for name, service in gpu["services"].items():
        assert service["deploy"]["resources"]["limits"]["memory"], name


def test_docker_waits_longer_than_each_service_drains(cpu: dict[str, Any]) -> None:
    for info in SERVICES:
        service = cpu["services"][info.name]
        env = service["environment"]
        grace_s = float(env.get(f"VOICEBOT_{info.name.upper()}_GRACE_S", env["VOICEBOT_GRACE_S"]))
        stop_s = seconds(service["stop_grace_period"])
        assert stop_s >= grace_s + 5, info.name


def test_images_build_from_the_dockerfile_target_of_the_same_name(cpu: dict[str, Any]) -> None:
    for info in SERVICES:
        service = cpu["services"][info.name]
        assert service["build"]["target"] == info.name
        assert service["image"] == f"voicebot/{info.name}:0.1.0"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]


def test_orchestrator_keeps_sessions_in_redis(cpu: dict[str, Any]) -> None:
    orchestrator = cpu["services"]["orchestrator"]
    assert orchestrator["environment"]["VOICEBOT_ORCHESTRATOR_SESSION_STORE"] == "redis"
    assert orchestrator["environment"]["VOICEBOT_REDIS_URL"] == "redis://redis:6379/0"
    assert {v["source"]: v["target"] for v in orchestrator["volumes"]} == {"orchestrator-data": "/data"}
