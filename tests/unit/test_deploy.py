"""The Kubernetes and KServe manifests under deploy/ validate offline and agree with the image.

Kubernetes objects are checked against the schemas bundled in kubernetes-validate (strict: unknown fields
fail). KServe's CRD schemas are not shipped by any PyPI package, so its objects are checked for the fields
KServe needs, and their container specs against Kubernetes' own Pod schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.37.0"  # the newest schemas bundled in kubernetes-validate 1.37.0 (offline)
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
KSERVE_DIR = ROOT / "deploy" / "kserve"
CONTAINER_PORT = 5000
NON_ROOT_UID = 10001  # the Dockerfile's USER


def _documents(folder: Path) -> list[dict[str, Any]]:
    return [doc for path in sorted(folder.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def kubernetes() -> dict[str, dict[str, Any]]:
    return _by_kind(_documents(KUBERNETES_DIR))


@pytest.fixture(scope="module")
def kserve() -> dict[str, dict[str, Any]]:
    return _by_kind(_documents(KSERVE_DIR))


def test_every_kubernetes_manifest_validates_strictly() -> None:
    docs = _documents(KUBERNETES_DIR)
    assert {doc["kind"] for doc in docs} == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_would_catch_a_mistake(kubernetes: dict[str, dict[str, Any]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(kubernetes["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_deployment_probes_resources_and_security(kubernetes: dict[str, dict[str, Any]]) -> None:
    pod = kubernetes["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"][0]["containerPort"] == CONTAINER_PORT
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] in {"/", "/v2/health/live"}
    assert container["startupProbe"]["httpGet"]["path"] in {"/", "/v2/health/live"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == NON_ROOT_UID
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert "/tmp" in mounts, "gunicorn needs a writable /tmp under a read-only root"
    assert mounts["/app/images"]["readOnly"] is True
    env = {item["name"]: item for item in container["env"]}
    assert env["DENSENET_THREADS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"


def test_service_hpa_and_pdb_point_at_the_deployment(kubernetes: dict[str, dict[str, Any]]) -> None:
    deployment = kubernetes["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert kubernetes["Service"]["spec"]["selector"].items() <= labels.items()
    assert kubernetes["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert kubernetes["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = kubernetes["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] > kubernetes["PodDisruptionBudget"]["spec"]["minAvailable"] - 1


def test_kserve_inference_service_uses_this_image_over_v2(kserve: dict[str, dict[str, Any]]) -> None:
    service, runtime = kserve["InferenceService"], kserve["ServingRuntime"]
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    model = service["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {fmt["name"] for fmt in runtime["spec"]["supportedModelFormats"]}
    assert "v2" in runtime["spec"]["protocolVersions"]
    # KServe forwards /v2/models/<InferenceService name>/infer unchanged: it must be the server's model name.
    assert service["metadata"]["name"] == "densenet121"
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    assert container["ports"][0]["containerPort"] == CONTAINER_PORT
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_kserve_runtime_container_is_a_valid_pod_container(kserve: dict[str, dict[str, Any]]) -> None:
    runtime = kserve["ServingRuntime"]["spec"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kserve-runtime-check"},
        "spec": {"containers": runtime["containers"], "volumes": runtime.get("volumes", [])},
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_server_model_name_matches_the_inference_service() -> None:
    from densenet_server.weights import MODEL_NAME

    assert _by_kind(_documents(KSERVE_DIR))["InferenceService"]["metadata"]["name"] == MODEL_NAME
