"""scripts/bench-litserve.sh runs end to end for a model other than DenseNet-121, and its peer answers as
this server does (the same export, the same preprocessing and categories from the export's record)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import CAT_JPEG, REPO, REPO_IMAGES
from support.random_weights import write_checkpoint

from densenet_server.config import Settings
from densenet_server.service import InferenceService
from densenet_server.tooling.local_server import free_port

pytest.importorskip("litserve")  # the test extra pins it; bench-litserve.sh then reuses this venv

MODEL = "shufflenet_v2_x0_5"  # a fast model, and not the default one: the peer must follow the export
VENV = Path(sys.prefix)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("litserve") / f"{MODEL}-random.pth"
    write_checkpoint(path, architecture=MODEL)
    return path


@pytest.fixture(scope="module")
def export(weights: Path) -> Path:
    target = weights.with_suffix(".onnx")
    subprocess.run(
        [str(VENV / "bin" / "densenet-server"), "export", "--model", MODEL, "--weights", str(weights), "--output", str(target)],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture(scope="module")
def peer_url(export: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "litserve_peer_server.py"), "--onnx", str(export), "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/predict"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                post_image(url)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)


def post_image(url: str) -> dict[str, object]:
    request = urllib.request.Request(url, CAT_JPEG.read_bytes(), {"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_the_peer_answers_as_this_server_does(peer_url: str, export: Path) -> None:
    service = InferenceService(Settings(onnx_model=export, model=MODEL, threads=1))
    service.load()
    try:
        ours = service.classify(CAT_JPEG.read_bytes(), 5)["top_k"]
    finally:
        service.stop()
    theirs = post_image(peer_url)["predictions"]
    assert [(entry["index"], entry["label"]) for entry in theirs] == [(entry["index"], entry["label"]) for entry in ours]
    assert [entry["probability"] for entry in theirs] == pytest.approx([entry["probability"] for entry in ours], abs=1e-6)


def test_the_script_runs_both_servers_on_the_same_model(weights: Path) -> None:
    environment = {
        **os.environ, "LITSERVE_VENV": str(VENV), "LITSERVE_PORT": str(free_port()), "LITSERVE_WORKERS": "1",
        "DENSENET_MODEL": MODEL,
    }
    result = subprocess.run(
        ["bash", "scripts/bench-litserve.sh", str(weights), "--photos", str(REPO_IMAGES), "--concurrency", "2",
         "--duration-s", "1"],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| densenet-server", "| LitServe"))]
    assert [row.split("|")[1].strip().split(" (")[0] for row in rows] == ["densenet-server", "LitServe 0.2.19"]
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert (cells[1], cells[3]) == ("2", "0") and int(cells[2]) > 0 and float(cells[4]) > 0, row
