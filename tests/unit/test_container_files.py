"""The Dockerfile, .dockerignore, run_docker.sh and compose.yaml have the properties the images rely on.

The CPU image itself is built and exercised by scripts/test-container.sh (minutes: it installs PyTorch), which
the suite does not run, and the CUDA image needs a GPU host; these checks catch a broken edit to the files in
milliseconds, and run run_docker.sh against a fake engine that records the commands it is given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from packaging.requirements import Requirement
from support import dockerfile as df

from densenet_server.config import load_settings
from densenet_server.model_record import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TARGET, CUDA_TARGET = "runtime", "cuda"
SERVING_TARGETS = (DEFAULT_TARGET, CUDA_TARGET)
SH = shutil.which("sh")


@pytest.fixture(scope="module")
def instructions() -> list[dict]:
    return df.instructions()


def _needed_stages(instructions: list[dict], target: str) -> set[str]:
    """Every stage a build of `target` runs: its FROM parents and the stages it COPYs from, transitively."""
    stages, needed, todo = df.named(instructions), set(), [target]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        stage = stages[name]
        todo += [base for base in [df.from_line(stage)[0]] if base in stages]
        todo += re.findall(r"--from=(\S+)", " ".join(df.values(stage, "COPY")))
    return needed


def _torch_pins(stage: list[dict]) -> set[str]:
    return set(re.findall(r"\btorch==(\S+)", " ".join(df.values(stage, "RUN"))))


def test_base_image_is_a_build_arg_defaulting_to_python_311_slim(instructions: list[dict]) -> None:
    assert df.global_args(instructions)["BASE_IMAGE"] == "python:3.11-slim"
    assert len(df.stages(instructions)) >= 2, "multi-stage: build stages and runtime stages"
    for name in df.named(instructions):
        assert df.from_line(df.lineage(instructions, name)[0])[0] == "${BASE_IMAGE}", name


def test_default_target_is_the_cpu_runtime_and_needs_no_cuda_stage(instructions: list[dict]) -> None:
    # `docker build .` builds the last stage; BuildKit and buildah skip the stages it does not need.
    assert df.from_line(df.stages(instructions)[-1])[1] == DEFAULT_TARGET
    needed = _needed_stages(instructions, DEFAULT_TARGET)
    assert needed == {"build", "serving", DEFAULT_TARGET}
    assert "CUDA_TORCH_INDEX_URL" not in json.dumps([df.named(instructions)[name] for name in needed])


def test_build_stage_takes_the_torch_index_and_a_local_weights_file(instructions: list[dict]) -> None:
    build = df.named(instructions)["build"]
    args = df.values(build, "ARG")
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in args
    assert any(arg.startswith("WEIGHTS_FILE") for arg in args)
    runs = " ".join(df.values(build, "RUN"))
    assert "$TORCH_INDEX_URL" in runs and "bake_weights.py" in runs
    assert "densenet-server export" in runs, "the build stage exports and verifies the ONNX model"


def test_runtime_stage_copies_a_torch_free_environment_and_the_onnx_model(instructions: list[dict]) -> None:
    stages = df.named(instructions)
    runs = " ".join(df.values(stages["build"], "RUN"))
    # The runtime venv installs the package without the torch extra and proves it loads without torch.
    assert "/opt/venv/bin/pip install --index-url \"$PIP_INDEX_URL\" /src " in runs
    assert "'torch' not in sys.modules" in runs
    copies = df.inherited(instructions, DEFAULT_TARGET, "COPY")
    assert copies == ["--from=build /opt/venv /opt/venv", "--from=build /opt/model/model.onnx /opt/model/model.onnx"]
    env = df.env(instructions, DEFAULT_TARGET)
    assert env["DENSENET_ONNX_MODEL"] == "/opt/model/model.onnx"
    assert "DENSENET_DEVICE" not in env, "the CPU image keeps the default device"


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_targets_are_non_root_expose_5000_and_8081_and_have_a_tool_free_healthcheck(
    instructions: list[dict], target: str
) -> None:
    user = df.inherited(instructions, target, "USER")[-1]
    assert user.isdigit() and user != "0", "a numeric non-root uid (Kubernetes' runAsNonRoot checks it)"
    assert df.inherited(instructions, target, "EXPOSE")[-1].split() == ["5000", "8081"]  # HTTP, gRPC
    healthcheck = df.inherited(instructions, target, "HEALTHCHECK")[-1]
    # GET /ready over HTTP or HTTPS as the server serves (healthcheck.py), with the image's own Python.
    assert json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip()) == ["python", "-m", "densenet_server.healthcheck"]


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_targets_run_gunicorn_in_exec_form_with_images_as_a_volume(
    instructions: list[dict], target: str
) -> None:
    entrypoint = json.loads(df.inherited(instructions, target, "ENTRYPOINT")[-1])  # exec form is a JSON array
    assert entrypoint == ["densenet-server", "serve"]
    assert not df.inherited(instructions, target, "CMD"), "no CMD: arguments given to `docker run` are passed to serve"
    assert json.loads(df.inherited(instructions, target, "VOLUME")[-1]) == ["/app/images"]
    env = df.env(instructions, target)
    assert env["DENSENET_IMAGES_DIR"] == "/app/images" and env["DENSENET_PORT"] == "5000"
    assert env["DENSENET_GRPC_PORT"] == "8081"
    assert env["PATH"].startswith("/opt/venv/bin:")



def test_cuda_target_installs_pytorch_from_the_cuda_index(instructions: list[dict]) -> None:
    stages = df.named(instructions)
    needed = _needed_stages(instructions, CUDA_TARGET)
    assert "build" not in needed, "the CUDA image neither needs the CPU torch nor the ONNX export"
    (builder,) = needed - {"serving", CUDA_TARGET}
    args = df.values(stages[builder], "ARG")
    (index,) = [arg.split("=", 1)[1] for arg in args if arg.startswith("CUDA_TORCH_INDEX_URL=")]
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", index), index
    assert any(arg.startswith("WEIGHTS_FILE") for arg in args)
    runs = " ".join(df.values(stages[builder], "RUN"))
    assert "$CUDA_TORCH_INDEX_URL" in runs and "$TORCH_INDEX_URL" not in runs
    assert "bake_weights.py" in runs and '"/src[torch]"' in runs
    assert "torch.version.cuda" in runs, "the build refuses a torch without CUDA"
    assert "load_backend(" in runs and "backend='torch'" in runs, "the build proves the weights load"
    assert "pip uninstall --yes --quiet pip setuptools" in runs
    # The same torch as the CPU build, and one the package's torch extra accepts, so installing it keeps it.
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["torch"]
    (torch_requirement,) = [Requirement(r) for r in extra if Requirement(r).name == "torch"]
    assert _torch_pins(stages[builder]) == _torch_pins(stages["build"]) != set()
    assert all(torch_requirement.specifier.contains(pin) for pin in _torch_pins(stages[builder]))


def test_cuda_target_serves_the_baked_weights_on_the_gpu(instructions: list[dict]) -> None:
    copies = df.inherited(instructions, CUDA_TARGET, "COPY")
    # The whole folder: the weights, their SHA-256, and labels.txt when LABELS_FILE was given.
    assert copies == ["--from=cuda-build /opt/venv /opt/venv", "--from=cuda-build /opt/model /opt/model"]
    env = df.env(instructions, CUDA_TARGET)
    assert env["DENSENET_DEVICE"] == "cuda", "fails at start-up without a GPU instead of using the CPU"
    assert env["DENSENET_WEIGHTS"] == "/opt/model/model.pth"
    assert "DENSENET_ONNX_MODEL" not in env
    assert "compute" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert "NVIDIA_VISIBLE_DEVICES" not in env, "which GPUs a container sees is the orchestrator's choice"


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_the_model_build_argument_is_what_the_image_serves(instructions: list[dict], target: str) -> None:
    assert df.global_args(instructions)["DENSENET_MODEL"] == DEFAULT_MODEL
    assert df.image_env(instructions, target)["DENSENET_MODEL"] == DEFAULT_MODEL
    assert df.image_env(instructions, target, {"DENSENET_MODEL": "resnet50"})["DENSENET_MODEL"] == "resnet50"
    # The image's environment is a valid configuration of that model, as `serve` reads it at start-up.
    settings = load_settings({}, environ=df.image_env(instructions, target, {"DENSENET_MODEL": "resnet50"}))
    assert settings.model == "resnet50" and settings.labels is None


@pytest.mark.parametrize("stage", ["build", "cuda-build"])
def test_the_weights_are_baked_and_proven_for_the_model_argument(instructions: list[dict], stage: str) -> None:
    builder = df.named(instructions)[stage]
    assert {"WEIGHTS_FILE", "LABELS_FILE", "DENSENET_MODEL"} <= set(df.values(builder, "ARG"))
    runs = " ".join(df.values(builder, "RUN"))
    # bake_weights.py reads DENSENET_MODEL, WEIGHTS_FILE and LABELS_FILE from the ARGs' environment.
    assert "bake_weights.py" in runs
    assert "model='$DENSENET_MODEL'" in runs, "the build proves the model it was given loads"


def test_the_export_is_made_for_the_model_argument_with_its_labels(instructions: list[dict]) -> None:
    (export,) = [run for run in df.values(df.named(instructions)["build"], "RUN") if "densenet-server export" in run]
    words = shlex.split(export)
    assert words[words.index("--model") + 1] == "$DENSENET_MODEL"
    assert words[words.index("--output") + 1] == "/opt/model/model.onnx"
    assert "${LABELS_FILE:+--labels /opt/model/labels.txt}" in export, "the export carries the labels when given"


def test_the_cuda_image_serves_the_baked_labels_only_when_given(instructions: list[dict]) -> None:
    assert df.image_env(instructions, CUDA_TARGET)["DENSENET_LABELS"] == ""
    given = df.image_env(instructions, CUDA_TARGET, {"LABELS_FILE": "weights/xray-labels.txt"})
    assert given["DENSENET_LABELS"] == "/opt/model/labels.txt"
    # An empty variable is an unset setting, not a labels file named "".
    assert load_settings({}, environ=df.image_env(instructions, CUDA_TARGET)).labels is None


def test_bake_weights_copies_the_weights_and_labels_from_the_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bake = _bake_weights_module(tmp_path, monkeypatch)
    (tmp_path / "w.pth").write_bytes(b"weights")
    (tmp_path / "labels.txt").write_text("a\nb\n")
    monkeypatch.setenv("WEIGHTS_FILE", str(tmp_path / "w.pth"))
    monkeypatch.setenv("LABELS_FILE", str(tmp_path / "labels.txt"))
    assert bake.main() == 0
    assert bake.TARGET.read_bytes() == b"weights"
    assert bake.LABELS_TARGET.read_text() == "a\nb\n"
    digest = hashlib.sha256(b"weights").hexdigest()
    assert bake.TARGET.with_name("model.pth.sha256").read_text() == digest + "\n"
    monkeypatch.setenv("LABELS_FILE", str(tmp_path / "missing.txt"))
    assert bake.main() == 1
    missing = tmp_path / "missing.txt"
    assert f"LABELS_FILE={missing} is not a file in the build context (put it under weights/)" in capsys.readouterr().err


def _bake_weights_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """deploy/docker/bake_weights.py, writing under ``tmp_path`` instead of /opt/model."""
    spec = importlib.util.spec_from_file_location("bake_weights", ROOT / "deploy" / "docker" / "bake_weights.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "TARGET", tmp_path / "model" / "model.pth")
    monkeypatch.setattr(module, "LABELS_TARGET", tmp_path / "model" / "labels.txt")
    return module


def test_dockerignore_sends_only_what_the_build_uses() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**")] == "**", "everything is excluded first"
    included = {line[1:] for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "README.md", "src/", "weights/", "deploy/docker/bake_weights.py"} <= included
    # every COPY source of the Dockerfile is in the context
    copies = [i["value"].split()[:-1] for i in df.instructions() if i["instruction"] == "COPY" and "--from" not in i["value"]]
    for source in (s for group in copies for s in group):
        assert source in included or source.rstrip("/") + "/" in included, source


def test_run_docker_script_builds_and_runs_with_a_read_only_images_mount() -> None:
    script = (ROOT / "run_docker.sh").read_text()
    assert "CONTAINER_ENGINE" in script and "docker" in script and "podman" in script
    assert '-v "$PWD/images:/app/images:ro"' in script
    assert '-p "$publish"' in script and "publish=${HOST_IP:+$HOST_IP:}$port:5000" in script
    assert "port=${PORT:-5000}" in script
    assert '-p "$publish_grpc"' in script and "publish_grpc=${HOST_IP:+$HOST_IP:}$grpc_port:8081" in script
    assert "curl http://localhost:$port/inference/cat.jpg" in script
    assert "--format docker" in script  # podman drops HEALTHCHECK otherwise


@pytest.mark.skipif(SH is None, reason="no POSIX shell")
def test_shell_scripts_parse() -> None:
    for script in ("run_docker.sh", "scripts/test-container.sh"):
        shell = "bash" if script.startswith("scripts/") else "sh"
        subprocess.run([shell, "-n", str(ROOT / script)], check=True)


@pytest.mark.skipif(SH is None, reason="no POSIX shell")
def test_run_docker_script_fails_clearly_without_an_engine(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(ROOT / "run_docker.sh")], env={"PATH": str(tmp_path)}, capture_output=True, text=True,
        executable=SH,
    )
    assert result.returncode == 1
    assert "neither docker nor podman found" in result.stderr


def _run_docker(tmp_path: Path, engines: tuple[str, ...], **env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """Runs run_docker.sh with only fake `engines` on PATH; returns the result and each engine call's argv."""
    bin_dir, log = tmp_path / "bin", tmp_path / "engine-calls.jsonl"
    bin_dir.mkdir()
    for engine in engines:
        fake = bin_dir / engine
        fake.write_text(
            f"#!{sys.executable}\nimport json, os, sys\n"
            "with open(os.environ['FAKE_ENGINE_LOG'], 'a') as log:\n"
            "    log.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + '\\n')\n"
        )
        fake.chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))  # the script's only external command
    result = subprocess.run(
        [SH, str(ROOT / "run_docker.sh")], env={"PATH": str(bin_dir), "FAKE_ENGINE_LOG": str(log), **env},
        capture_output=True, text=True,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def _split(calls: list[list[str]]) -> tuple[list[str], list[str]]:
    (build, run) = calls
    assert build[1] == "build" and run[1] == "run"
    return build, run


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_builds_and_runs_the_cpu_image_by_default(tmp_path: Path) -> None:
    result, calls = _run_docker(tmp_path, ("docker", "podman"))
    assert result.returncode == 0, result.stderr
    build, run = _split(calls)
    assert build[0] == "docker", "docker is preferred when both exist"
    assert "--target" not in build and build[-3:] == ["-t", "densenet-server:latest", "."]
    assert "--gpus" not in run and "--device" not in run
    assert run[-1] == "densenet-server:latest"
    published = [run[index + 1] for index, word in enumerate(run) if word == "-p"]
    assert published == ["5000:5000", "8081:8081"]  # HTTP, gRPC
    assert run[run.index("-v") + 1] == f"{ROOT}/images:/app/images:ro"


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_publishes_both_ports_where_asked(tmp_path: Path) -> None:
    result, calls = _run_docker(tmp_path, ("docker",), PORT="8000", GRPC_PORT="9000", HOST_IP="127.0.0.1")
    assert result.returncode == 0, result.stderr
    _, run = _split(calls)
    assert [run[index + 1] for index, word in enumerate(run) if word == "-p"] == ["127.0.0.1:8000:5000", "127.0.0.1:9000:8081"]
    assert "localhost:9000" in result.stdout


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_gpu_builds_the_cuda_target_and_passes_gpus_all_to_docker(tmp_path: Path) -> None:
    result, calls = _run_docker(tmp_path, ("docker",), GPU="1")
    assert result.returncode == 0, result.stderr
    build, run = _split(calls)
    assert build[build.index("--target") + 1] == "cuda"
    assert build[-3:] == ["-t", "densenet-server:cuda", "."], "its own tag: the CPU image is not replaced"
    assert run[run.index("--gpus") + 1] == "all"
    assert "--device" not in run and run[-1] == "densenet-server:cuda"


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_gpu_gives_podman_the_gpus_as_a_cdi_device(tmp_path: Path) -> None:
    result, calls = _run_docker(tmp_path, ("podman",), GPU="1")
    assert result.returncode == 0, result.stderr
    build, run = _split(calls)
    assert build[0] == "podman"
    assert build[build.index("--target") + 1] == "cuda"
    assert build[build.index("--format") + 1] == "docker"
    assert run[run.index("--device") + 1] == "nvidia.com/gpu=all"
    assert "--gpus" not in run and run[-1] == "densenet-server:cuda"


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
@pytest.mark.parametrize("value", ["yes", "2", "true"])
def test_run_docker_refuses_an_unknown_gpu_value_before_building(tmp_path: Path, value: str) -> None:
    result, calls = _run_docker(tmp_path, ("docker",), GPU=value)
    assert result.returncode == 2
    assert "GPU must be 0 or 1" in result.stderr
    assert calls == []


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_passes_the_model_its_weights_and_labels_to_the_build(tmp_path: Path) -> None:
    result, calls = _run_docker(
        tmp_path, ("docker",), MODEL="resnet18", WEIGHTS_FILE="weights/xray.pth", LABELS_FILE="weights/xray.txt",
        MULTI_LABEL="1",
    )
    assert result.returncode == 0, result.stderr
    build, run = _split(calls)
    build_args = [build[n + 1] for n, word in enumerate(build) if word == "--build-arg"]
    assert {"DENSENET_MODEL=resnet18", "WEIGHTS_FILE=weights/xray.pth", "LABELS_FILE=weights/xray.txt"} <= set(build_args)
    # Multi-label is how the model is served: an environment variable of the run, not of the build.
    assert run[run.index("-e") + 1] == "DENSENET_MULTI_LABEL=true"


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_builds_the_default_model_without_model_arguments(tmp_path: Path) -> None:
    result, calls = _run_docker(tmp_path, ("docker",))
    assert result.returncode == 0, result.stderr
    build, run = _split(calls)
    build_args = [build[n + 1] for n, word in enumerate(build) if word == "--build-arg"]
    assert build_args == ["BASE_IMAGE=python:3.11-slim"], "the Dockerfile's defaults: densenet121, published weights"
    assert "-e" not in run


@pytest.mark.skipif(SH is None or shutil.which("dirname") is None, reason="no POSIX shell")
def test_run_docker_refuses_an_unknown_multi_label_value_before_building(tmp_path: Path) -> None:
    result, calls = _run_docker(tmp_path, ("docker",), MULTI_LABEL="yes")
    assert result.returncode == 2
    assert "MULTI_LABEL must be 0 or 1 (got 'yes')" in result.stderr
    assert calls == []


def test_compose_service_matches_run_docker() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["densenet-server"]
    assert service["build"]["context"] == "."
    args = service["build"]["args"]
    assert set(args) == {"BASE_IMAGE", "DENSENET_MODEL", "WEIGHTS_FILE", "LABELS_FILE"}
    # The variables run_docker.sh reads, with the Dockerfile's defaults.
    assert args["DENSENET_MODEL"] == "${MODEL:-densenet121}" and args["LABELS_FILE"] == "${LABELS_FILE:-}"
    assert service["environment"]["DENSENET_MULTI_LABEL"] == "${MULTI_LABEL:-0}"
    assert service["ports"] == ["5000:5000", "8081:8081"]  # HTTP, gRPC
    assert service["volumes"] == [
        {"type": "bind", "source": "./images", "target": "/app/images", "read_only": True}
    ]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    healthcheck = service["healthcheck"]
    assert healthcheck["test"] == ["CMD", "python", "-m", "densenet_server.healthcheck"]


def test_container_test_makes_its_own_venv_and_checks_the_cpu_quota() -> None:
    """It must not depend on scripts/test.sh having run: .venv is used only after the step that makes it."""
    lines = [line for line in (ROOT / "scripts/test-container.sh").read_text().splitlines() if not line.startswith("#")]
    bootstrap = next(n for n, line in enumerate(lines) if line.strip() == "scripts/bootstrap.sh torch")
    guard = bootstrap - 2  # if ! .venv/bin/python -c "import ... torch ..."; then / step / bootstrap
    assert lines[guard].startswith("if ! .venv/bin/python -c") and "torch" in lines[guard]
    uses = [n for n, line in enumerate(lines) if ".venv/bin/" in line]
    assert all(n > bootstrap for n in uses if n != guard)
    script = "\n".join(lines)
    assert 'run+=(--cpus "$cpus")' in script and "cpus=${CONTAINER_CPUS-2}" in script
    assert "usable CPUs: " in script  # the start-up line of server.serve
