"""The Helm chart: lint, Kubernetes schema validation, and what the rendered manifests promise.

Every check runs the real helm binary (``helm lint --strict``, ``helm template``) and the real
``kubernetes-validate`` with its bundled Kubernetes 1.30 schemas; nothing talks to a cluster.
"""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    KUBERNETES_VERSION,
    PROFILES,
    VLLM_FLAGS,
    Render,
    by_kind,
    run_tool,
    values_args,
)
from voicebot.catalog import BY_NAME, SERVICES

APP_VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|API_KEY|PRIVATE_KEY)$", re.IGNORECASE)


@pytest.fixture(scope="module", params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def manifests(render: Render, profile: str) -> list[dict[str, Any]]:
    return render(profile)


def deployments(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments by component name."""
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in by_kind(manifests, "Deployment").values()
    }


def configmap_env(manifests: list[dict[str, Any]], component: str) -> dict[str, str]:
    return dict(by_kind(manifests, "ConfigMap")[f"voicebot-{component}"]["data"])


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def helm_lint(helm: Path, profile: str | None, *sets: str) -> tuple[int, str]:
    result = run_tool([helm, "lint", "--strict", CHART, *values_args(profile, sets)])
    return result.returncode, result.stdout + result.stderr


def helm_template_error(helm: Path, *sets: str) -> str:
    result = run_tool([helm, "template", "voicebot", CHART, *values_args(None, sets)])
    assert result.returncode != 0, "the chart rendered although it should have refused these values"
    return result.stderr


# --- lint and schema validation -------------------------------------------------------------


@pytest.mark.parametrize("values", [None, *PROFILES])
def test_helm_lint_strict_passes(helm: Path, values: str | None) -> None:
    code, output = helm_lint(helm, values)
    assert code == 0, output


@pytest.mark.parametrize("values", [None, *PROFILES])
def test_rendered_manifests_pass_kubernetes_validate_strict(helm: Path, values: str | None) -> None:
    rendered = run_tool([helm, "template", "voicebot", CHART, *values_args(values)])
    assert rendered.returncode == 0, rendered.stderr
    result = run_tool(
        [KUBERNETES_VALIDATE, "--strict", "--no-warn", "-k", KUBERNETES_VERSION, "-"], stdin=rendered.stdout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_kubernetes_validate_rejects_an_unknown_field(render: Render) -> None:
    """The validator is strict: the same manifests with one misspelt field fail."""
    deployment = by_kind(render("cpu"), "Deployment")["voicebot-stt"]
    deployment["spec"]["template"]["spec"]["enableServiceLink"] = False
    result = run_tool(
        [KUBERNETES_VALIDATE, "--strict", "--no-warn", "-k", KUBERNETES_VERSION, "-"], stdin=yaml.safe_dump(deployment)
    )
    assert result.returncode != 0
    assert "enableServiceLink" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("case", "sets", "complaint"),
    [
        ("a token in a component's env", ["components.stt.env.VOICEBOT_AUTH_TOKEN=abc"], "VOICEBOT_AUTH_TOKEN"),
        ("an API key in vLLM's env", ["components.llm.vllm.env.VLLM_API_KEY=abc"], "VLLM_API_KEY"),
        ("a URL with a password in env", ["components.cache.env.VOICEBOT_CACHE_REDIS_URL=redis://u:pw@r:6379"], "not"),
        ("a Redis URL with a password", ["redis.external.url=redis://user:pw@redis:6379/0"], "redis.external.url"),
        ("an unknown component", ["components.billing.port=50057"], "billing"),
        ("an unknown key in a component", ["components.stt.replica=2"], "replica"),
        ("a negative replica count", ["components.tts.replicas=-1"], "replicas"),
        ("a port out of range", ["components.cache.port=70000"], "port"),
        ("an unknown model source", ["models.source=nfs"], "models.source"),
        ("zero GPUs for vLLM", ["components.llm.vllm.gpus=0"], "gpus"),
        ("a startup timeout too short for a model load", ["components.llm.vllm.startupTimeoutSeconds=10"], "startup"),
        ("a CPU target that is not a number", ["components.stt.autoscaling.cpuUtilization=high"], "cpuUtilization"),
        ("an unknown model cache type", ["components.llm.vllm.modelCache.type=s3"], "modelCache.type"),
    ],
)
def test_helm_lint_should_reject(helm: Path, case: str, sets: list[str], complaint: str) -> None:
    code, output = helm_lint(helm, None, *sets)
    assert code != 0, f"helm lint accepted {case}"
    assert complaint in output, output


def test_should_refuse_more_than_one_analytics_replica_on_a_read_write_once_volume(helm: Path) -> None:
    assert "ReadWriteOnce" in helm_template_error(helm, "components.analytics.replicas=2")


def test_should_refuse_an_hpa_with_no_metric(helm: Path) -> None:
    error = helm_template_error(helm, "components.stt.autoscaling.cpuUtilization=0")
    assert "components.stt.autoscaling needs" in error


def test_should_refuse_a_redis_cache_without_redis(helm: Path) -> None:
    assert "there is no Redis" in helm_template_error(helm, "redis.enabled=false")


def test_should_refuse_tls_without_certificates(helm: Path) -> None:
    assert "tls.existingSecret" in helm_template_error(helm, "tls.enabled=true")


# --- what every profile renders --------------------------------------------------------------


def test_every_service_has_a_deployment_service_configmap_and_serviceaccount(manifests: list[dict[str, Any]]) -> None:
    names = {f"voicebot-{s.name}" for s in SERVICES}
    assert set(by_kind(manifests, "Deployment")) == names
    assert set(by_kind(manifests, "ConfigMap")) == names
    assert set(by_kind(manifests, "ServiceAccount")) == names
    assert names | {f"{n}-headless" for n in names} | {"voicebot-redis"} == set(by_kind(manifests, "Service"))


def test_grpc_probes_hit_each_services_port(manifests: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(manifests).items():
        container = pod(deployment)["containers"][0]
        port = BY_NAME[component].default_port
        assert container["name"] == component
        assert {"name": "grpc", "containerPort": port, "protocol": "TCP"} in container["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (component, probe)
        env = configmap_env(manifests, component)
        assert env[f"VOICEBOT_{component.upper()}_PORT"] == str(port)
        assert env[f"VOICEBOT_{component.upper()}_HOST"] == "0.0.0.0"


def test_services_name_their_ports_grpc_and_metrics(manifests: list[dict[str, Any]]) -> None:
    services = by_kind(manifests, "Service")
    for info in SERVICES:
        ports = {p["name"]: p for p in services[f"voicebot-{info.name}"]["spec"]["ports"]}
        assert ports["grpc"]["port"] == info.default_port
        assert ports["grpc"]["appProtocol"] == "grpc"
        assert ports["metrics"]["port"] == info.default_port + 1000
        headless = services[f"voicebot-{info.name}-headless"]["spec"]
        assert headless["clusterIP"] == "None"
        assert [p["name"] for p in headless["ports"]] == ["grpc"]


def test_peers_dial_each_other_through_the_headless_services(manifests: list[dict[str, Any]]) -> None:
    env = configmap_env(manifests, "orchestrator")
    for info in SERVICES:
        assert env[f"VOICEBOT_{info.name.upper()}_TARGET"] == f"voicebot-{info.name}-headless:{info.default_port}"


def test_every_image_is_tagged_with_the_charts_app_version(manifests: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(manifests).items():
        image = pod(deployment)["containers"][0]["image"]
        assert image == f"registry.example.com/voicebot/{component}:{APP_VERSION}"


def test_should_tag_images_with_image_tag_when_it_is_set(render: Render) -> None:
    for deployment in by_kind(render(None, "image.tag=1.2.3-rc1"), "Deployment").values():
        assert pod(deployment)["containers"][0]["image"].endswith(":1.2.3-rc1")


def test_rolling_updates_add_before_they_remove(manifests: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(manifests).items():
        strategy = deployment["spec"]["strategy"]
        if component == "analytics":  # SQLite on a ReadWriteOnce volume: one pod at a time
            assert strategy == {"type": "Recreate"}
            continue
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def test_should_roll_analytics_when_its_store_is_not_a_read_write_once_volume(render: Render) -> None:
    deployment = by_kind(render(None, "components.analytics.persistence.enabled=false"), "Deployment")
    assert deployment["voicebot-analytics"]["spec"]["strategy"]["type"] == "RollingUpdate"


def test_pods_drain_calls_before_they_are_killed(manifests: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(manifests).items():
        spec = pod(deployment)
        assert spec["enableServiceLinks"] is False
        assert spec["automountServiceAccountToken"] is False
        grace_s = float(configmap_env(manifests, component)[f"VOICEBOT_{component.upper()}_GRACE_S"])
        for container in spec["containers"]:
            command = container["lifecycle"]["preStop"]["exec"]["command"]
            assert command[0] == "sleep"
            assert spec["terminationGracePeriodSeconds"] > int(command[1]), (component, container["name"])
        pause = int(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
        assert spec["terminationGracePeriodSeconds"] >= pause + grace_s + 5, component
        liveness = spec["containers"][0]["livenessProbe"]
        assert liveness["periodSeconds"] * liveness["failureThreshold"] > pause + grace_s, (
            f"{component}'s liveness probe would restart it while it drains (NOT_SERVING)"
        )


def test_containers_run_unprivileged(manifests: list[dict[str, Any]]) -> None:
    for deployment in deployments(manifests).values():
        spec = pod(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        main = spec["containers"][0]["securityContext"]
        assert main["allowPrivilegeEscalation"] is False
        assert main["readOnlyRootFilesystem"] is True


def test_configmaps_hold_no_secret_values(manifests: list[dict[str, Any]], profile: str) -> None:
    secrets = [
        base64.b64decode(value).decode()
        for secret in by_kind(manifests, "Secret").values()
        for value in (secret.get("data") or {}).values()
    ]
    if profile == "cpu":
        assert "ci-not-a-secret" in secrets
    for configmap in by_kind(manifests, "ConfigMap").values():
        for key, value in configmap["data"].items():
            assert not SECRET_NAME.search(key), key
            assert not re.search(r"://[^/@\s]+:[^/@\s]*@", value), key
            assert value not in secrets, key


def test_tokens_are_mounted_files(manifests: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(manifests).items():
        env = configmap_env(manifests, component)
        token_file = env["VOICEBOT_AUTH_TOKEN_FILE"]
        mounts = {m["name"]: m for m in pod(deployment)["containers"][0]["volumeMounts"]}
        assert token_file.startswith(mounts["auth"]["mountPath"] + "/")
        assert mounts["auth"]["readOnly"] is True
        assert "VOICEBOT_AUTH_TOKEN" not in env


def test_only_the_orchestrator_is_reachable_from_outside_the_release(manifests: list[dict[str, Any]]) -> None:
    policies = by_kind(manifests, "NetworkPolicy")
    release = {"app.kubernetes.io/name": "voicebot", "app.kubernetes.io/instance": "voicebot"}
    for info in SERVICES:
        rules = policies[f"voicebot-{info.name}"]["spec"]["ingress"]
        grpc_rule = next(r for r in rules if {"port": "grpc", "protocol": "TCP"} in r["ports"])
        if info.name == "orchestrator":
            assert "from" not in grpc_rule
        else:
            assert grpc_rule["from"] == [{"podSelector": {"matchLabels": release}}]
    redis = policies["voicebot-redis"]["spec"]["ingress"]
    assert redis == [
        {"ports": [{"port": "redis", "protocol": "TCP"}], "from": [{"podSelector": {"matchLabels": release}}]}
    ]


def test_pdbs_cover_every_component_that_runs_more_than_one_replica(manifests: list[dict[str, Any]]) -> None:
    pdbs = by_kind(manifests, "PodDisruptionBudget")
    hpas = by_kind(manifests, "HorizontalPodAutoscaler")
    for name, deployment in by_kind(manifests, "Deployment").items():
        floor = hpas[name]["spec"]["minReplicas"] if name in hpas else deployment["spec"]["replicas"]
        if floor > 1:
            assert pdbs[name]["spec"]["maxUnavailable"] == 1
            assert pdbs[name]["spec"]["selector"] == deployment["spec"]["selector"]
        else:
            assert name not in pdbs, f"a PDB on {name}'s single replica would block node drains"


def test_should_not_render_a_pdb_when_the_component_runs_one_replica(render: Render) -> None:
    assert "voicebot-stt" not in by_kind(render("cpu"), "PodDisruptionBudget")


def test_should_not_render_a_pdb_when_pdb_enabled_is_false(render: Render) -> None:
    pdbs = by_kind(render("gpu", "components.stt.pdb.enabled=false"), "PodDisruptionBudget")
    assert "voicebot-stt" not in pdbs
    assert "voicebot-tts" in pdbs


def test_should_not_render_hpas_when_autoscaling_is_off(render: Render) -> None:
    manifests = render("cpu")
    assert by_kind(manifests, "HorizontalPodAutoscaler") == {}
    assert all(d["spec"]["replicas"] == 1 for d in by_kind(manifests, "Deployment").values())


def test_redis_is_a_small_bundled_statefulset_by_default(manifests: list[dict[str, Any]]) -> None:
    redis = by_kind(manifests, "StatefulSet")["voicebot-redis"]
    assert redis["spec"]["replicas"] == 1
    assert configmap_env(manifests, "cache")["VOICEBOT_REDIS_URL"] == "redis://voicebot-redis:6379/0"
    assert configmap_env(manifests, "cache")["VOICEBOT_CACHE_STORAGE"] == "redis"


def test_should_read_an_external_redis_url_from_its_secret(render: Render) -> None:
    manifests = render(None, "redis.enabled=false", "redis.external.existingSecret=bank-redis")
    assert "voicebot-redis" not in by_kind(manifests, "StatefulSet")
    assert "VOICEBOT_REDIS_URL" not in configmap_env(manifests, "cache")
    env = pod(by_kind(manifests, "Deployment")["voicebot-cache"])["containers"][0]["env"]
    assert {
        "name": "VOICEBOT_REDIS_URL",
        "valueFrom": {"secretKeyRef": {"name": "bank-redis", "key": "redis-url"}},
    } in env


# --- the CPU profile ------------------------------------------------------------------------


def test_cpu_profile_runs_the_embedded_engines_without_gpus(render: Render) -> None:
    manifests = render("cpu")
    assert configmap_env(manifests, "llm")["VOICEBOT_LLM_ENGINE"] == "banking"
    for deployment in by_kind(manifests, "Deployment").values():
        spec = pod(deployment)
        assert len(spec["containers"]) == 1
        assert "nvidia.com/gpu" not in yaml.safe_dump(spec)


# --- the GPU profile ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu(render: Render) -> list[dict[str, Any]]:
    return render("gpu")


def test_gpu_limits_are_only_on_the_llm_pod(gpu: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(gpu).items():
        for container in pod(deployment)["containers"]:
            limits = container.get("resources", {}).get("limits", {})
            requests = container.get("resources", {}).get("requests", {})
            if (component, container["name"]) == ("llm", "vllm"):
                assert limits["nvidia.com/gpu"] == 1
            else:
                assert "nvidia.com/gpu" not in limits, (component, container["name"])
                assert "nvidia.com/gpu" not in requests, (component, container["name"])


def test_the_llm_pod_runs_vllm_beside_llm_svc_on_a_gpu_node(gpu: list[dict[str, Any]]) -> None:
    spec = pod(deployments(gpu)["llm"])
    assert [c["name"] for c in spec["containers"]] == ["llm", "vllm"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["runtimeClassName"] == "nvidia"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert volumes["model-cache"]["hostPath"]["path"] == "/var/lib/voicebot/huggingface"
    for name, deployment in deployments(gpu).items():
        if name != "llm":
            assert "nodeSelector" not in pod(deployment), name
            assert "tolerations" not in pod(deployment), name


def test_vllm_serves_mistral_with_tool_calls_and_runtime_lora(gpu: list[dict[str, Any]]) -> None:
    vllm = pod(deployments(gpu)["llm"])["containers"][1]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    args = vllm["args"]
    assert set(VLLM_FLAGS) <= set(args)
    env = {e["name"]: e for e in vllm["env"]}
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]["value"] == "True"
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "voicebot-hf-token", "key": "HF_TOKEN"}
    mounts = {m["name"]: m["mountPath"] for m in vllm["volumeMounts"]}
    assert mounts["dshm"] == "/dev/shm"
    assert env["HF_HOME"]["value"].startswith(mounts["model-cache"])


def test_llm_svc_switches_to_the_vllm_engine_in_the_same_pod(gpu: list[dict[str, Any]]) -> None:
    env = configmap_env(gpu, "llm")
    assert env["VOICEBOT_LLM_ENGINE"] == "vllm"
    assert env["VOICEBOT_LLM_VLLM_BASE_URL"] == "http://127.0.0.1:8000"
    assert env["VOICEBOT_LLM_MODEL"] == "mistral-7b-instruct"


def test_the_model_load_gets_a_long_startup_probe(gpu: list[dict[str, Any]]) -> None:
    llm, vllm = pod(deployments(gpu)["llm"])["containers"]
    vllm_budget = vllm["startupProbe"]["periodSeconds"] * vllm["startupProbe"]["failureThreshold"]
    llm_budget = llm["startupProbe"]["periodSeconds"] * llm["startupProbe"]["failureThreshold"]
    assert vllm["startupProbe"]["httpGet"] == {"path": "/health", "port": "vllm"}
    assert vllm_budget >= 1800
    assert llm_budget >= vllm_budget, "llm_svc must not be restarted while vLLM is still loading"
    assert deployments(gpu)["llm"]["spec"]["progressDeadlineSeconds"] > vllm_budget


def test_vllm_outlives_llm_svcs_drain(gpu: list[dict[str, Any]]) -> None:
    spec = pod(deployments(gpu)["llm"])
    llm, vllm = (int(c["lifecycle"]["preStop"]["exec"]["command"][1]) for c in spec["containers"])
    grace_s = float(configmap_env(gpu, "llm")["VOICEBOT_LLM_GRACE_S"])
    assert vllm >= llm + grace_s


def test_hpas_scale_on_calls_queue_depth_and_cpu(gpu: list[dict[str, Any]]) -> None:
    hpas = by_kind(gpu, "HorizontalPodAutoscaler")
    assert set(hpas) == {f"voicebot-{n}" for n in ("orchestrator", "stt", "tts", "llm", "cache")}
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in by_kind(gpu, "Deployment")[name]["spec"], "the HPA owns the replica count"
        assert spec["minReplicas"] <= spec["maxReplicas"]
    pods_metric = {
        name: [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        for name, hpa in hpas.items()
    }
    assert pods_metric["voicebot-orchestrator"] == ["voicebot_calls_active"]
    assert pods_metric["voicebot-llm"] == ["vllm_num_requests_waiting"]
    for name in ("stt", "tts", "cache"):
        (metric,) = hpas[f"voicebot-{name}"]["spec"]["metrics"]
        assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}


def test_should_render_a_cpu_hpa_for_analytics_when_its_store_is_shared(render: Render) -> None:
    manifests = render(
        None, "components.analytics.persistence.enabled=false", "components.analytics.autoscaling.enabled=true"
    )
    hpa = by_kind(manifests, "HorizontalPodAutoscaler")["voicebot-analytics"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "voicebot-analytics" in by_kind(manifests, "PodDisruptionBudget")


def test_service_monitor_scrapes_every_component_and_vllm(gpu: list[dict[str, Any]]) -> None:
    (monitor,) = by_kind(gpu, "ServiceMonitor").values()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics", "vllm"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [s for s in by_kind(gpu, "Service").values() if selector.items() <= s["metadata"]["labels"].items()]
    assert sorted(s["metadata"]["name"] for s in scraped) == sorted(f"voicebot-{s.name}" for s in SERVICES)


def test_namespace_quota_and_limit_range_are_optional(gpu: list[dict[str, Any]], render: Render) -> None:
    quota = by_kind(gpu, "ResourceQuota")["voicebot"]
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"
    assert "voicebot" in by_kind(gpu, "LimitRange")
    assert by_kind(render(None), "ResourceQuota") == {}


def test_models_volume_is_mounted_read_only_where_engines_load_weights(gpu: list[dict[str, Any]]) -> None:
    for component, deployment in deployments(gpu).items():
        mounts = {m["name"]: m for m in pod(deployment)["containers"][0]["volumeMounts"]}
        if component in ("stt", "tts", "cache"):
            assert mounts["models"] == {"name": "models", "mountPath": "/models", "readOnly": True}
            volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
            assert volumes["models"]["persistentVolumeClaim"]["claimName"] == "voicebot-models"
        else:
            assert "models" not in mounts


# --- TLS ------------------------------------------------------------------------------------


def test_with_tls_the_probes_check_grpc_health_over_tls(render: Render) -> None:
    manifests = render(None, "tls.enabled=true", "tls.existingSecret=bank-tls")
    for component, deployment in deployments(manifests).items():
        container = pod(deployment)["containers"][0]
        command = container["readinessProbe"]["exec"]["command"]
        assert command[:2] == ["python", "-c"]
        assert f'"127.0.0.1:{BY_NAME[component].default_port}"' in command[2]
        assert f'"voicebot-{component}"' in command[2]
        env = configmap_env(manifests, component)
        assert env["VOICEBOT_TLS_CERT_FILE"] == "/var/run/secrets/voicebot/tls/tls.crt"
        volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "bank-tls"


async def test_the_tls_probe_command_checks_a_real_mutual_tls_server(render: Render, tmp_path: Path) -> None:
    """Runs the rendered probe command against a real mesh server that requires client certificates."""
    from mesh import MeshServer
    from scripts.make_dev_certs import make_certs
    from tests.conftest import free_port
    from tests.mesh.apps import ProbeApp, settings

    manifests = render(None, "tls.enabled=true", "tls.existingSecret=bank-tls", "tls.clientAuth=true")
    command = pod(deployments(manifests)["stt"])["containers"][0]["livenessProbe"]["exec"]["command"]
    certs = tmp_path / "certs"
    make_certs(certs)
    mounted = tmp_path / "tls"
    mounted.mkdir()
    for source, name in (("ca.pem", "ca.crt"), ("server.pem", "tls.crt"), ("server-key.pem", "tls.key")):
        (mounted / name).write_bytes((certs / source).read_bytes())
    tls = {
        "tls_cert_file": str(mounted / "tls.crt"),
        "tls_key_file": str(mounted / "tls.key"),
        "tls_ca_file": str(mounted / "ca.crt"),
        "tls_client_auth": True,
    }

    def probe(port: int) -> int:
        script = command[2].replace("/var/run/secrets/voicebot/tls/", f"{mounted}/")
        script = script.replace("127.0.0.1:50052", f"127.0.0.1:{port}")
        return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30).returncode

    async with MeshServer(ProbeApp(), settings(**tls)) as server:
        serving = await asyncio.to_thread(probe, server.port)
    assert serving == 0
    assert await asyncio.to_thread(probe, free_port()) != 0


def test_orchestrator_sessions_live_in_redis_and_scratch_on_a_writable_volume(gpu: list[dict[str, Any]]) -> None:
    env = configmap_env(gpu, "orchestrator")
    assert env["VOICEBOT_ORCHESTRATOR_SESSION_STORE"] == "redis"
    assert env["VOICEBOT_REDIS_URL"] == "redis://voicebot-redis:6379/0"
    spec = pod(deployments(gpu)["orchestrator"])
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert env["VOICEBOT_ORCHESTRATOR_ACCOUNTS_DB"].startswith(mounts["data"] + "/")
    assert {v["name"]: v for v in spec["volumes"]}["data"]["emptyDir"] == {"sizeLimit": "1Gi"}


def test_should_scale_on_an_external_metric_when_one_is_given(render: Render) -> None:
    manifests = render(
        None,
        "components.orchestrator.autoscaling.podsMetrics=null",
        "components.orchestrator.autoscaling.externalMetrics[0].name=voicebot_calls_active_total",
        "components.orchestrator.autoscaling.externalMetrics[0].averageValue=25",
    )
    (metric,) = by_kind(manifests, "HorizontalPodAutoscaler")["voicebot-orchestrator"]["spec"]["metrics"]
    assert metric == {
        "type": "External",
        "external": {
            "metric": {"name": "voicebot_calls_active_total"},
            "target": {"type": "AverageValue", "averageValue": "25"},
        },
    }


def test_prometheus_adapter_rules_serve_every_metric_the_hpas_read(gpu: list[dict[str, Any]]) -> None:
    adapter = yaml.safe_load((CHART.parents[1] / "deploy" / "prometheus-adapter" / "values.yaml").read_text())
    served = set()
    for kind in ("custom", "external"):
        for rule in adapter["rules"][kind]:
            series = rule["seriesQuery"].split("{")[0]
            served.add(re.sub(rule["name"]["matches"], rule["name"]["as"].replace("${1}", r"\1"), series))
    read = {
        metric[metric["type"].lower()]["metric"]["name"]
        for hpa in by_kind(gpu, "HorizontalPodAutoscaler").values()
        for metric in hpa["spec"]["metrics"]
        if metric["type"] in ("Pods", "External")
    }
    assert read == {"voicebot_calls_active", "vllm_num_requests_waiting"}
    assert read | {"voicebot_calls_active_total"} == served
