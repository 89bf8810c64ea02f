"""The Dockerfile, .dockerignore, run_docker.sh and compose.yaml have the properties the image relies on.

The image itself is built and exercised by scripts/test-container.sh (minutes: it installs PyTorch), which the
suite does not run; these checks catch a broken edit to the files in milliseconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]


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


def _values(stage: list[dict], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def test_base_image_is_a_build_arg_defaulting_to_python_311_slim(instructions: list[dict]) -> None:
    global_args = [i["value"] for i in instructions if i["instruction"] == "ARG" and i["startline"] < min(
        j["startline"] for j in instructions if j["instruction"] == "FROM")]
    assert "BASE_IMAGE=python:3.11-slim" in global_args
    froms = [i["value"] for i in instructions if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    assert all(value.startswith("${BASE_IMAGE}") for value in froms)


def test_build_stage_takes_the_torch_index_and_a_local_weights_file(instructions: list[dict]) -> None:
    build = _stages(instructions)[0]
    args = _values(build, "ARG")
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in args
    assert any(arg.startswith("WEIGHTS_FILE") for arg in args)
    runs = " ".join(_values(build, "RUN"))
    assert "$TORCH_INDEX_URL" in runs and "bake_weights.py" in runs
    assert "densenet-server export" in runs, "the build stage exports and verifies the ONNX model"


def test_runtime_stage_copies_a_torch_free_environment_and_the_onnx_model(instructions: list[dict]) -> None:
    build, runtime = _stages(instructions)[0], _stages(instructions)[-1]
    runs = " ".join(_values(build, "RUN"))
    # The runtime venv installs the package without the torch extra and proves it loads without torch.
    assert "/opt/venv/bin/pip install --index-url \"$PIP_INDEX_URL\" /src " in runs
    assert "'torch' not in sys.modules" in runs
    copies = _values(runtime, "COPY")
    assert copies == ["--from=build /opt/venv /opt/venv", "--from=build /opt/model/densenet121.onnx /opt/model/densenet121.onnx"]


def test_runtime_stage_is_non_root_exposes_5000_and_has_a_tool_free_healthcheck(instructions: list[dict]) -> None:
    runtime = _stages(instructions)[-1]
    user = _values(runtime, "USER")[-1]
    assert user not in {"root", "0"} and not user.startswith("0:")
    assert "5000" in _values(runtime, "EXPOSE")
    healthcheck = _values(runtime, "HEALTHCHECK")[-1]
    assert "CMD [\"python\"" in healthcheck and "/ready" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck


def test_runtime_stage_runs_gunicorn_in_exec_form_with_images_as_a_volume(instructions: list[dict]) -> None:
    runtime = _stages(instructions)[-1]
    entrypoint = json.loads(_values(runtime, "ENTRYPOINT")[-1])  # exec form is a JSON array
    assert entrypoint == ["densenet-server", "serve"]
    assert not _values(runtime, "CMD"), "no CMD: arguments given to `docker run` are passed to serve"
    assert json.loads(_values(runtime, "VOLUME")[-1]) == ["/app/images"]
    env = " ".join(_values(runtime, "ENV"))
    assert "DENSENET_WEIGHTS" not in env
    for setting in ("DENSENET_ONNX_MODEL=/opt/model/densenet121.onnx", "DENSENET_IMAGES_DIR=/app/images", "DENSENET_PORT=5000"):
        assert setting in env


def test_healthcheck_command_is_valid_python(instructions: list[dict]) -> None:
    healthcheck = _values(_stages(instructions)[-1], "HEALTHCHECK")[-1]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")


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


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_shell_scripts_parse() -> None:
    for script in ("run_docker.sh", "scripts/test-container.sh"):
        shell = "bash" if script.startswith("scripts/") else "sh"
        subprocess.run([shell, "-n", str(ROOT / script)], check=True)


def test_run_docker_script_fails_clearly_without_an_engine(tmp_path: Path) -> None:
    result = subprocess.run(
        ["sh", str(ROOT / "run_docker.sh")], env={"PATH": str(tmp_path)}, capture_output=True, text=True,
        executable=shutil.which("sh"),
    )
    assert result.returncode == 1
    assert "neither docker nor podman found" in result.stderr


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
