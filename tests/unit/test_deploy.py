"""The Kubernetes and KServe manifests under deploy/ validate offline and agree with the image.

Kubernetes objects are checked against the schemas bundled in kubernetes-validate (strict: unknown fields
fail). KServe's CRD schemas are not shipped by any PyPI package, so its objects are checked for the fields
KServe needs, and their container specs against Kubernetes' own Pod schema. Each folder has a gpu/ variant
for the CUDA image (Dockerfile target cuda), checked the same way, and for the GPU it asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from support import dockerfile as df

from densenet_server.access_policy import needs_key
from densenet_server.config import load_settings
from densenet_server.model_record import DEFAULT_MODEL
from densenet_server.models_file import model_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.37.0"  # the newest schemas bundled in kubernetes-validate 1.37.0 (offline)
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
KSERVE_DIR = ROOT / "deploy" / "kserve"
GPU_KUBERNETES_DIR = KUBERNETES_DIR / "gpu"
GPU_KSERVE_DIR = KSERVE_DIR / "gpu"
SEVERAL_MODELS_DIR = KUBERNETES_DIR / "several-models"
CONTAINER_PORT = 5000
GRPC_PORT = 8081  # the image's DENSENET_GRPC_PORT and the server's default
NON_ROOT_UID = 10001  # the Dockerfile's USER
GPU = "nvidia.com/gpu"  # the NVIDIA device plugin's extended resource
API_KEYS_SECRET = "densenet-server-api-keys"  # made by `kubectl create secret` (README, "Access control")
# Every pod template: (folder, kind of the object that holds it).
POD_TEMPLATES = [
    (KUBERNETES_DIR, "Deployment"),
    (GPU_KUBERNETES_DIR, "Deployment"),
    (SEVERAL_MODELS_DIR, "Deployment"),
    (KSERVE_DIR, "ServingRuntime"),
    (GPU_KSERVE_DIR, "ServingRuntime"),
]


def _documents(folder: Path) -> list[dict[str, Any]]:
    return [doc for path in sorted(folder.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def kubernetes() -> dict[str, dict[str, Any]]:
    return _by_kind(_documents(KUBERNETES_DIR))


@pytest.fixture(scope="module")
def gpu_kubernetes() -> dict[str, dict[str, Any]]:
    return _by_kind(_documents(GPU_KUBERNETES_DIR))


@pytest.fixture(scope="module")
def kserve() -> dict[str, dict[str, Any]]:
    return _by_kind(_documents(KSERVE_DIR))


@pytest.fixture(scope="module", params=[KSERVE_DIR, GPU_KSERVE_DIR], ids=["cpu", "gpu"])
def any_kserve(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    return _by_kind(_documents(request.param))


def _requests_one_gpu(resources: dict[str, Any]) -> bool:
    # An extended resource cannot be overcommitted: a request, where given, must equal the limit.
    limit = str(resources.get("limits", {}).get(GPU))
    return limit == "1" and str(resources.get("requests", {}).get(GPU, limit)) == limit


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def test_every_kubernetes_manifest_validates_strictly() -> None:
    docs = _documents(KUBERNETES_DIR)
    assert {doc["kind"] for doc in docs} == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_gpu_kubernetes_manifest_validates_strictly() -> None:
    docs = _documents(GPU_KUBERNETES_DIR)
    assert {doc["kind"] for doc in docs} == {"Deployment"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_would_catch_a_mistake(kubernetes: dict[str, dict[str, Any]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(kubernetes["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("folder", [KUBERNETES_DIR, GPU_KUBERNETES_DIR], ids=["cpu", "gpu"])
def test_deployment_probes_resources_and_security(folder: Path) -> None:
    pod = _by_kind(_documents(folder))["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["ports"][0]["containerPort"] == CONTAINER_PORT
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == {"http": CONTAINER_PORT, "grpc": GRPC_PORT}
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
    http, grpc = kubernetes["Service"]["spec"]["ports"]
    assert http["targetPort"] == "http"
    assert (grpc["targetPort"], grpc["port"], grpc["appProtocol"]) == ("grpc", GRPC_PORT, "kubernetes.io/h2c")
    assert kubernetes["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = kubernetes["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] > kubernetes["PodDisruptionBudget"]["spec"]["minAvailable"] - 1


def test_gpu_deployment_asks_for_one_gpu_and_the_cuda_device(gpu_kubernetes: dict[str, dict[str, Any]]) -> None:
    pod = gpu_kubernetes["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert _requests_one_gpu(container["resources"])
    assert _env(container)["DENSENET_DEVICE"]["value"] == "cuda"
    assert "cuda" in container["image"], "the image of the Dockerfile's cuda target"
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # The memory limit covers the memory-backed /dev/shm that PyTorch's processes share tensors through.
    shm = {volume["name"]: volume for volume in pod["volumes"]}["shm"]
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def test_cpu_deployment_asks_for_no_gpu(kubernetes: dict[str, dict[str, Any]]) -> None:
    (container,) = kubernetes["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert not any(GPU in part for part in container["resources"].values())
    assert "DENSENET_DEVICE" not in _env(container)


def test_gpu_deployment_differs_from_the_cpu_one_only_where_the_gpu_needs_it(
    kubernetes: dict[str, dict[str, Any]], gpu_kubernetes: dict[str, dict[str, Any]]
) -> None:
    """Same name, labels, selector, security and probes: it replaces the CPU Deployment, and the Service and
    PodDisruptionBudget of deploy/kubernetes/ serve it unchanged."""

    def shared(deployment: dict[str, Any]) -> dict[str, Any]:
        copy = yaml.safe_load(yaml.safe_dump(deployment))
        del copy["spec"]["strategy"], copy["spec"]["template"]["spec"]["volumes"]
        copy["spec"]["template"]["spec"].pop("tolerations", None)
        (container,) = copy["spec"]["template"]["spec"]["containers"]
        for key in ("image", "env", "resources", "startupProbe", "volumeMounts"):
            del container[key]
        return copy

    assert shared(gpu_kubernetes["Deployment"]) == shared(kubernetes["Deployment"])


def test_kserve_inference_service_uses_this_image_over_v2(any_kserve: dict[str, dict[str, Any]]) -> None:
    service, runtime = any_kserve["InferenceService"], any_kserve["ServingRuntime"]
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
    # The server's gRPC port, stated (KServe's Serverless mode routes the one REST port; see the comment).
    assert _env(container)["DENSENET_GRPC_PORT"]["value"] == str(GRPC_PORT)


def test_kserve_runtime_container_is_a_valid_pod_container(any_kserve: dict[str, dict[str, Any]]) -> None:
    runtime = any_kserve["ServingRuntime"]["spec"]
    pod_fields = {"containers", "volumes", "tolerations", "nodeSelector", "affinity"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kserve-runtime-check"},
        "spec": {key: value for key, value in runtime.items() if key in pod_fields},
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_kserve_gpu_variant_asks_for_one_gpu_and_the_cuda_device() -> None:
    gpu = _by_kind(_documents(GPU_KSERVE_DIR))
    runtime = gpu["ServingRuntime"]
    (container,) = runtime["spec"]["containers"]
    assert _requests_one_gpu(container["resources"])
    assert _env(container)["DENSENET_DEVICE"]["value"] == "cuda"
    assert "cuda" in container["image"]
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in runtime["spec"]["tolerations"]
    # KServe puts its default resources on an InferenceService that gives none, and they replace the
    # runtime's: the InferenceService asks for the GPU itself, in a valid container resources block.
    model = gpu["InferenceService"]["spec"]["predictor"]["model"]
    assert _requests_one_gpu(model["resources"])
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kserve-model-check"},
        "spec": {"containers": [{"name": "kserve-container", "image": container["image"], "resources": model["resources"]}]},
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    # Installed beside the CPU runtime, it is never picked for an InferenceService that does not name it.
    assert not any(fmt.get("autoSelect") for fmt in runtime["spec"]["supportedModelFormats"])
    assert runtime["metadata"]["name"] != _by_kind(_documents(KSERVE_DIR))["ServingRuntime"]["metadata"]["name"]


def test_cpu_kserve_runtime_asks_for_no_gpu(kserve: dict[str, dict[str, Any]]) -> None:
    (container,) = kserve["ServingRuntime"]["spec"]["containers"]
    assert not any(GPU in part for part in container["resources"].values())


@pytest.mark.parametrize("folder", [KSERVE_DIR, GPU_KSERVE_DIR], ids=["cpu", "gpu"])
def test_server_model_name_matches_the_inference_service(folder: Path) -> None:
    docs = _by_kind(_documents(folder))
    (container,) = docs["ServingRuntime"]["spec"]["containers"]
    # The model the runtime serves (the image's build argument) is the name KServe routes by.
    assert _env(container)["DENSENET_MODEL"]["value"] == docs["InferenceService"]["metadata"]["name"] == DEFAULT_MODEL


def test_the_manifests_grpc_port_is_the_servers_default() -> None:
    assert load_settings({}, environ={}).grpc_port == GRPC_PORT


@pytest.mark.parametrize("folder", [KUBERNETES_DIR, GPU_KUBERNETES_DIR], ids=["cpu", "gpu"])
def test_deployments_name_the_model_the_image_is_built_for(folder: Path) -> None:
    (container,) = _by_kind(_documents(folder))["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert _env(container)["DENSENET_MODEL"]["value"] == df.global_args(df.instructions())["DENSENET_MODEL"]


def _pod_spec(folder: Path, kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = _by_kind(_documents(folder))[kind]["spec"]
    return spec["template"]["spec"] if kind == "Deployment" else spec


@pytest.mark.parametrize(("folder", "kind"), POD_TEMPLATES, ids=lambda value: getattr(value, "name", value))
def test_the_api_keys_are_a_secret_mounted_as_a_file(folder: Path, kind: str) -> None:
    pod = _pod_spec(folder, kind)
    (container,) = pod["containers"]
    keys_file = Path(_env(container)["DENSENET_API_KEYS_FILE"]["value"])
    assert load_settings({}, environ={"DENSENET_API_KEYS_FILE": str(keys_file)}).api_keys_file == keys_file
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(keys_file.parent))
    # Read-only, and the folder rather than the file: a subPath mount never sees an update of the Secret.
    assert mount["readOnly"] is True and "subPath" not in mount
    secret = next(v for v in pod["volumes"] if v["name"] == mount["name"])["secret"]
    assert secret["secretName"] == API_KEYS_SECRET
    assert secret["items"] == [{"key": "api-keys", "path": keys_file.name}]
    # Readable by the group the server runs as (0), by no other user.
    assert secret["defaultMode"] == 0o440
    groups = {pod.get("securityContext", {}).get("runAsGroup"), container["securityContext"].get("runAsGroup")} - {None}
    assert groups == {0}
    # No key in the manifests: no Secret object with data, no variable but the file's path.
    assert all(doc["kind"] != "Secret" for doc in _documents(folder))
    assert [name for name in _env(container) if "KEY" in name] == ["DENSENET_API_KEYS_FILE"]


@pytest.mark.parametrize("folder", [KUBERNETES_DIR, GPU_KUBERNETES_DIR, SEVERAL_MODELS_DIR], ids=["cpu", "gpu", "several-models"])
def test_probes_use_routes_that_need_no_key(folder: Path) -> None:
    (container,) = _pod_spec(folder, "Deployment")["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert not needs_key(path, metrics_open=False), (probe, path)


def test_several_models_manifests_validate_strictly() -> None:
    docs = _documents(SEVERAL_MODELS_DIR)
    assert {doc["kind"] for doc in docs} == {"Deployment", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_several_models_deployment_replaces_the_cpu_one(kubernetes: dict[str, dict[str, Any]]) -> None:
    several = _by_kind(_documents(SEVERAL_MODELS_DIR))["Deployment"]
    assert several["metadata"] == kubernetes["Deployment"]["metadata"]
    assert several["spec"]["selector"] == kubernetes["Deployment"]["spec"]["selector"]
    assert several["spec"]["template"]["metadata"] == kubernetes["Deployment"]["spec"]["template"]["metadata"]


def test_several_models_deployment_serves_the_config_maps_models_file(tmp_path: Path) -> None:
    """The ConfigMap's models.toml, mounted where DENSENET_MODELS_FILE says, with the image's environment and
    the container's, is a configuration `serve` accepts, and serves the models it names."""
    docs = _by_kind(_documents(SEVERAL_MODELS_DIR))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {name: item["value"] for name, item in _env(container).items() if "value" in item}
    models_file = Path(env["DENSENET_MODELS_FILE"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(models_file.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    (item,) = volume["configMap"]["items"]
    assert item["path"] == models_file.name
    # The file the server reads, here; its paths are absolute, so where it lies changes nothing.
    local = tmp_path / models_file.name
    local.write_text(docs["ConfigMap"]["data"][item["key"]], encoding="utf-8")
    image = df.image_env(df.instructions(), "runtime")
    settings = load_settings({}, environ={**image, **env, "DENSENET_MODELS_FILE": str(local), "DENSENET_THREADS": "2"})
    models = model_settings(settings)
    assert [model.served_name() for model in models] == ["densenet121", "xray"]
    assert models[0].onnx_model == Path(image["DENSENET_ONNX_MODEL"]), "the image's own export is the default model"
    assert (models[1].onnx_model, models[1].multi_label, models[1].threshold) == (Path("/models/xray.onnx"), True, 0.4)
    # Every model's file is in the image or on a mounted volume.
    mounted = [Path(m["mountPath"]) for m in container["volumeMounts"]] + [Path(image["DENSENET_ONNX_MODEL"]).parent]
    assert all(any(model.onnx_model.is_relative_to(folder) for folder in mounted) for model in models)


def test_the_images_one_model_settings_give_way_to_a_models_file() -> None:
    """The image sets DENSENET_MODEL and DENSENET_ONNX_MODEL for its one model; beside a models file they are
    not the server's settings (each table gives its own)."""
    image = df.image_env(df.instructions(), "runtime")
    assert image["DENSENET_ONNX_MODEL"]
    settings = load_settings({}, environ={**image, "DENSENET_MODELS_FILE": "/etc/densenet-server/models.toml"})
    assert (settings.onnx_model, settings.model) == (None, "densenet121")
