"""The Dockerfile, .dockerignore, run_docker.sh and compose.yaml have the properties the images rely on.

The CPU image itself is built and exercised by scripts/test-container.sh (minutes: it installs PyTorch), which
the suite does not run, and the CUDA image needs a GPU host; these checks catch a broken edit to the files in
milliseconds, and run run_docker.sh against a fake engine that records the commands it is given.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TARGET, CUDA_TARGET = "runtime", "cuda"
SERVING_TARGETS = (DEFAULT_TARGET, CUDA_TARGET)
SH = shutil.which("sh")


@pytest.fixture(scope="module")
def instructions() -> list[dict]:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return parser.structure


def _stages(instructions: list[dict]) -> list[list[dict]]:
    stages: list[list[dict]] = []
    for instruction in instructions:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _from(stage: list[dict]) -> tuple[str, str]:
    """(base, stage name) of `FROM base AS name`."""
    base, _, name = stage[0]["value"].split()
    return base, name


def _named(instructions: list[dict]) -> dict[str, list[dict]]:
    return {_from(stage)[1]: stage for stage in _stages(instructions)}


def _values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _lineage(instructions: list[dict], target: str) -> list[list[dict]]:
    """The target stage and the stages it is built FROM, the oldest first: an image inherits their config."""
    stages = _named(instructions)
    chain = [stages[target]]
    while _from(chain[0])[0] in stages:
        chain.insert(0, stages[_from(chain[0])[0]])
    return chain


def _inherited(instructions: list[dict], target: str, name: str) -> list[str]:
    return [value for stage in _lineage(instructions, target) for value in _values(stage, name)]


def _env(instructions: list[dict], target: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in _inherited(instructions, target, "ENV"):
        env.update(item.split("=", 1) for item in shlex.split(value))
    return env


def _needed_stages(instructions: list[dict], target: str) -> set[str]:
    """Every stage a build of `target` runs: its FROM parents and the stages it COPYs from, transitively."""
    stages, needed, todo = _named(instructions), set(), [target]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        stage = stages[name]
        todo += [base for base in [_from(stage)[0]] if base in stages]
        todo += re.findall(r"--from=(\S+)", " ".join(_values(stage, "COPY")))
    return needed


def _torch_pins(stage: list[dict]) -> set[str]:
    return set(re.findall(r"\btorch==(\S+)", " ".join(_values(stage, "RUN"))))


def test_base_image_is_a_build_arg_defaulting_to_python_311_slim(instructions: list[dict]) -> None:
    global_args = [i["value"] for i in instructions if i["instruction"] == "ARG" and i["startline"] < min(
        j["startline"] for j in instructions if j["instruction"] == "FROM")]
    assert "BASE_IMAGE=python:3.11-slim" in global_args
    assert len(_stages(instructions)) >= 2, "multi-stage: build stages and runtime stages"
    for name in _named(instructions):
        assert _from(_lineage(instructions, name)[0])[0] == "${BASE_IMAGE}", name


def test_default_target_is_the_cpu_runtime_and_needs_no_cuda_stage(instructions: list[dict]) -> None:
    # `docker build .` builds the last stage; BuildKit and buildah skip the stages it does not need.
    assert _from(_stages(instructions)[-1])[1] == DEFAULT_TARGET
    needed = _needed_stages(instructions, DEFAULT_TARGET)
    assert needed == {"build", "serving", DEFAULT_TARGET}
    assert "CUDA_TORCH_INDEX_URL" not in json.dumps([_named(instructions)[name] for name in needed])


def test_build_stage_takes_the_torch_index_and_a_local_weights_file(instructions: list[dict]) -> None:
    build = _named(instructions)["build"]
    args = _values(build, "ARG")
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in args
    assert any(arg.startswith("WEIGHTS_FILE") for arg in args)
    runs = " ".join(_values(build, "RUN"))
    assert "$TORCH_INDEX_URL" in runs and "bake_weights.py" in runs
    assert "densenet-server export" in runs, "the build stage exports and verifies the ONNX model"


def test_runtime_stage_copies_a_torch_free_environment_and_the_onnx_model(instructions: list[dict]) -> None:
    stages = _named(instructions)
    runs = " ".join(_values(stages["build"], "RUN"))
    # The runtime venv installs the package without the torch extra and proves it loads without torch.
    assert "/opt/venv/bin/pip install --index-url \"$PIP_INDEX_URL\" /src " in runs
    assert "'torch' not in sys.modules" in runs
    copies = _inherited(instructions, DEFAULT_TARGET, "COPY")
    assert copies == ["--from=build /opt/venv /opt/venv", "--from=build /opt/model/densenet121.onnx /opt/model/densenet121.onnx"]
    env = _env(instructions, DEFAULT_TARGET)
    assert env["DENSENET_ONNX_MODEL"] == "/opt/model/densenet121.onnx"
    assert "DENSENET_DEVICE" not in env, "the CPU image keeps the default device"


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_targets_are_non_root_expose_5000_and_have_a_tool_free_healthcheck(
    instructions: list[dict], target: str
) -> None:
    user = _inherited(instructions, target, "USER")[-1]
    assert user.isdigit() and user != "0", "a numeric non-root uid (Kubernetes' runAsNonRoot checks it)"
    assert "5000" in _inherited(instructions, target, "EXPOSE")
    healthcheck = _inherited(instructions, target, "HEALTHCHECK")[-1]
    assert "CMD [\"python\"" in healthcheck and "/ready" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_serving_targets_run_gunicorn_in_exec_form_with_images_as_a_volume(
    instructions: list[dict], target: str
) -> None:
    entrypoint = json.loads(_inherited(instructions, target, "ENTRYPOINT")[-1])  # exec form is a JSON array
    assert entrypoint == ["densenet-server", "serve"]
    assert not _inherited(instructions, target, "CMD"), "no CMD: arguments given to `docker run` are passed to serve"
    assert json.loads(_inherited(instructions, target, "VOLUME")[-1]) == ["/app/images"]
    env = _env(instructions, target)
    assert env["DENSENET_IMAGES_DIR"] == "/app/images" and env["DENSENET_PORT"] == "5000"
    assert env["PATH"].startswith("/opt/venv/bin:")


@pytest.mark.parametrize("target", SERVING_TARGETS)
def test_healthcheck_command_is_valid_python(instructions: list[dict], target: str) -> None:
    healthcheck = _inherited(instructions, target, "HEALTHCHECK")[-1]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")


def test_cuda_target_installs_pytorch_from_the_cuda_index(instructions: list[dict]) -> None:
    stages = _named(instructions)
    needed = _needed_stages(instructions, CUDA_TARGET)
    assert "build" not in needed, "the CUDA image neither needs the CPU torch nor the ONNX export"
    (builder,) = needed - {"serving", CUDA_TARGET}
    args = _values(stages[builder], "ARG")
    (index,) = [arg.split("=", 1)[1] for arg in args if arg.startswith("CUDA_TORCH_INDEX_URL=")]
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", index), index
    assert any(arg.startswith("WEIGHTS_FILE") for arg in args)
    runs = " ".join(_values(stages[builder], "RUN"))
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
    copies = _inherited(instructions, CUDA_TARGET, "COPY")
    assert {copy.split()[-1] for copy in copies} == {"/opt/venv", "/opt/model/densenet121.pth"}
    env = _env(instructions, CUDA_TARGET)
    assert env["DENSENET_DEVICE"] == "cuda", "fails at start-up without a GPU instead of using the CPU"
    assert env["DENSENET_WEIGHTS"] == "/opt/model/densenet121.pth"
    assert "DENSENET_ONNX_MODEL" not in env
    assert "compute" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert "NVIDIA_VISIBLE_DEVICES" not in env, "which GPUs a container sees is the orchestrator's choice"


def test_dockerignore_sends_only_what_the_build_uses() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**")] == "**", "everything is excluded first"
    included = {line[1:] for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "README.md", "src/", "weights/", "deploy/docker/bake_weights.py"} <= included
    # every COPY source of the Dockerfile is in the context
    copies = [i["value"].split()[:-1] for i in DockerfileParser(path=str(ROOT / "Dockerfile")).structure
              if i["instruction"] == "COPY" and "--from" not in i["value"]]
    for source in (s for group in copies for s in group):
        assert source in included or source.rstrip("/") + "/" in included, source


def test_run_docker_script_builds_and_runs_with_a_read_only_images_mount() -> None:
    script = (ROOT / "run_docker.sh").read_text()
    assert "CONTAINER_ENGINE" in script and "docker" in script and "podman" in script
    assert '-v "$PWD/images:/app/images:ro"' in script
    assert '-p "$publish"' in script and "publish=${HOST_IP:+$HOST_IP:}$port:5000" in script
    assert "port=${PORT:-5000}" in script
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
    assert run[run.index("-p") + 1] == "5000:5000"
    assert run[run.index("-v") + 1] == f"{ROOT}/images:/app/images:ro"


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


def test_compose_service_matches_run_docker() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["densenet-server"]
    assert service["build"]["context"] == "."
    assert set(service["build"]["args"]) == {"BASE_IMAGE", "WEIGHTS_FILE"}
    assert service["ports"] == ["5000:5000"]
    assert service["volumes"] == [
        {"type": "bind", "source": "./images", "target": "/app/images", "read_only": True}
    ]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    healthcheck = service["healthcheck"]
    assert healthcheck["test"][:3] == ["CMD", "python", "-c"] and "/ready" in healthcheck["test"][3]
    compile(healthcheck["test"][3], "<compose healthcheck>", "exec")


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
