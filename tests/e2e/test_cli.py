from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.paths import REPO_IMAGES
from support.reference import reference_probabilities
from support.server_process import server_command
from torch import nn


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command(), *args], capture_output=True, text=True, timeout=300)


def test_evaluate_reports_accuracy(tmp_path: Path, checkpoint_path: Path, reference_model: nn.Module) -> None:
    photos = sorted(REPO_IMAGES.glob("*.jpg"))
    for photo in photos:
        shutil.copy(photo, tmp_path / photo.name)
    probabilities = reference_probabilities(reference_model, photos)
    # Label the first two photos with the model's own top-1 and the rest with another class.
    labels = [int(p) if i < 2 else int((p + 1) % 1000) for i, p in enumerate(probabilities.argmax(axis=1))]
    # Whether each label is among the reference's five best: top-5 is computed here, not assumed.
    top5 = np.mean([label in np.argsort(-row, kind="stable")[:5] for label, row in zip(labels, probabilities)])
    with (tmp_path / "labels.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "label_index", "label_name"])
        writer.writerows([photo.name, label, "x"] for photo, label in zip(photos, labels))
    result = run("evaluate", "--labels", str(tmp_path / "labels.csv"), "--weights", str(checkpoint_path))
    assert result.returncode == 0, result.stderr
    assert f"images: 4  top-1: 0.5000  top-5: {top5:.4f}" in result.stdout
    assert "not torchvision's published" in result.stderr


def test_serve_refuses_missing_weights_with_a_clear_message(tmp_path: Path) -> None:
    result = run("serve", "--port", "5999", "--host", "127.0.0.1", "--weights", str(tmp_path / "missing.pth"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_serve_refuses_wrong_hash(checkpoint_path: Path) -> None:
    result = run("serve", "--port", "5999", "--host", "127.0.0.1", "--weights", str(checkpoint_path), "--weights-sha256", "0" * 64)
    assert result.returncode == 2
    assert "but " + "0" * 64 + " was expected" in result.stderr


def test_invalid_setting_is_refused() -> None:
    result = subprocess.run([*server_command(), "serve"], capture_output=True, text=True, timeout=60, env={"DENSENET_PORT": "x", "PATH": ""})
    assert result.returncode == 2
    assert "port" in result.stderr


@pytest.mark.parametrize("command", ["serve", "evaluate"])
def test_help_lists_environment_variables(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "DENSENET_WEIGHTS" in result.stdout


def test_module_entry_point_matches_console_script() -> None:
    result = subprocess.run([sys.executable, "-m", "densenet_server.cli", "config"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "DENSENET_PORT" in result.stdout
