from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from support.paths import REPO_IMAGES
from support.reference import reference_probabilities
from support.server_process import ServerProcess, server_command
from support.several_models import SECOND_ARCHITECTURE, SECOND_LABELS, SecondModel, second_model_flags
from torch import nn

from densenet_server.backends.onnx_backend import OnnxBackend

PHOTOS = sorted(REPO_IMAGES.glob("*.jpg"))
# Where the 14-class ResNet-18's sigmoid probabilities on PHOTOS leave a margin (tests/e2e/test_classify_cli.py).
THRESHOLD = 0.9


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command(), *args], capture_output=True, text=True, timeout=300)


def write_truth(folder: Path, labels: list[str]) -> Path:
    """The truth CSV of PHOTOS (copied into ``folder``), one label_index cell per photo."""
    for photo in PHOTOS:
        shutil.copy(photo, folder / photo.name)
    path = folder / "truth.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "label_index", "label_name"])
        writer.writerows([photo.name, label, "x"] for photo, label in zip(PHOTOS, labels))
    return path


def test_evaluate_reports_accuracy(tmp_path: Path, checkpoint_path: Path, reference_model: nn.Module) -> None:
    probabilities = reference_probabilities(reference_model, PHOTOS)
    # Label the first two photos with the model's own top-1 and the rest with another class.
    labels = [int(p) if i < 2 else int((p + 1) % 1000) for i, p in enumerate(probabilities.argmax(axis=1))]
    # Whether each label is among the reference's five best: top-5 is computed here, not assumed.
    top5 = np.mean([label in np.argsort(-row, kind="stable")[:5] for label, row in zip(labels, probabilities)])
    truth = write_truth(tmp_path, [str(label) for label in labels])
    result = run("evaluate", "--truth", str(truth), "--weights", str(checkpoint_path))
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


def test_evaluate_takes_the_truth_flag_and_leaves_labels_to_the_model(tmp_path: Path) -> None:
    # --labels names a model's classes, as in every command; the ground truth is --truth.
    result = run("evaluate", "--labels", str(tmp_path / "truth.csv"))
    assert result.returncode == 2
    assert "densenet-server evaluate: error: the following arguments are required: --truth" in result.stderr
    help_text = run("evaluate", "--help").stdout
    assert "--truth TRUTH" in help_text and "DENSENET_LABELS" in help_text


def test_evaluate_a_model_with_its_own_classes(tmp_path: Path, second_model: SecondModel) -> None:
    """Top-1/top-5 over the 14 classes of a fine-tuned ResNet-18 (softmax): its own class indices."""
    probabilities = reference_probabilities(second_model.model, PHOTOS, architecture=SECOND_ARCHITECTURE)
    ranking = np.argsort(-probabilities, axis=1, kind="stable")
    # Photo 0: the top-1; photo 1: the second; photo 2: the sixth (not in the top 5); photo 3: the last.
    labels = [int(ranking[0, 0]), int(ranking[1, 1]), int(ranking[2, 5]), int(ranking[3, -1])]
    truth = write_truth(tmp_path, [str(label) for label in labels])
    result = run("evaluate", "--truth", str(truth), *second_model_flags(second_model))
    assert result.returncode == 0, result.stderr
    assert "images: 4  top-1: 0.2500  top-5: 0.5000" in result.stdout


def test_evaluate_a_multi_label_model(tmp_path: Path, second_model: SecondModel) -> None:
    probabilities = reference_probabilities(second_model.model, PHOTOS, architecture=SECOND_ARCHITECTURE, multi_label=True)
    predicted = [set(np.flatnonzero(row >= THRESHOLD).tolist()) for row in probabilities]
    unpredicted = [sorted(set(range(len(SECOND_LABELS))) - found) for found in predicted]
    # Photo 0: exactly the predicted set; 1: one predicted class missing; 2: one extra; 3: none at all.
    truth = [predicted[0], predicted[1] - {min(predicted[1])}, predicted[2] | {unpredicted[2][0]}, set()]
    hits = sum(len(p & t) for p, t in zip(predicted, truth))
    precision = hits / sum(map(len, predicted))
    recall = hits / sum(map(len, truth))
    f1 = 2 * precision * recall / (precision + recall)
    cells = [";".join(map(str, sorted(labels))) for labels in truth]
    result = run(
        "evaluate", "--truth", str(write_truth(tmp_path, cells)),
        *second_model_flags(second_model, "--multi-label", "--threshold", str(THRESHOLD)),
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"images: 4  exact match: 0.2500  precision: {precision:.4f}  recall: {recall:.4f}  F1: {f1:.4f}  "
        f"(threshold {THRESHOLD:g})"
    ) in result.stdout


def test_evaluate_refuses_a_class_the_model_does_not_have(tmp_path: Path, second_model: SecondModel) -> None:
    truth = write_truth(tmp_path, ["0", "3", "14", "1"])
    result = run("evaluate", "--truth", str(truth), *second_model_flags(second_model))
    assert result.returncode == 2
    assert f"{truth}, line 4: label_index 14 is not a class of {SECOND_ARCHITECTURE} (0 to 13)" in result.stderr
    assert result.stdout == ""


@pytest.fixture(scope="module")
def second_export(tmp_path_factory: pytest.TempPathFactory, second_model: SecondModel) -> Path:
    """The 14-class ResNet-18 exported with its labels by the real command."""
    onnx = tmp_path_factory.mktemp("export") / "xray.onnx"
    result = run("export", *second_model_flags(second_model), "--output", str(onnx))
    assert result.returncode == 0, result.stderr
    described = f"{SECOND_ARCHITECTURE} with {len(SECOND_LABELS)} classes, weights file {second_model.weights.name}"
    assert f"{onnx}: {described}" in result.stdout
    return onnx


def test_export_carries_the_models_record(second_export: Path) -> None:
    record = OnnxBackend(second_export, threads=1).record
    assert record is not None
    assert (record.architecture, record.categories, record.published_categories) == (SECOND_ARCHITECTURE, SECOND_LABELS, False)


def test_an_export_is_served_with_its_model_and_labels(second_export: Path, second_model: SecondModel) -> None:
    # No --labels: the export names its classes; the outputs are chosen when serving.
    args = ["--onnx-model", str(second_export), "--model", SECOND_ARCHITECTURE, "--multi-label", "--threshold", str(THRESHOLD),
            "--images-dir", str(REPO_IMAGES)]
    with ServerProcess.start(args) as server:
        answer = server.get("/inference/cat.jpg").json()
    expected = reference_probabilities(
        second_model.model, [REPO_IMAGES / "cat.jpg"], architecture=SECOND_ARCHITECTURE, multi_label=True
    )[0]
    assert (answer["model"], answer["backend"], answer["weights_published"]) == (SECOND_ARCHITECTURE, "onnxruntime", False)
    above = [int(i) for i in np.argsort(-expected, kind="stable") if expected[i] >= THRESHOLD]
    assert [(entry["index"], entry["label"]) for entry in answer["labels"]] == [(i, SECOND_LABELS[i]) for i in above]
    assert max(abs(entry["probability"] - expected[entry["index"]]) for entry in answer["top_k"]) < PARITY_TOLERANCE


def test_an_export_of_another_architecture_is_refused(second_export: Path) -> None:
    result = run("classify", str(PHOTOS[0]), "--onnx-model", str(second_export))  # --model: the default, densenet121
    assert result.returncode == 2
    assert f"{second_export} is an export of {SECOND_ARCHITECTURE}: serve it with --model {SECOND_ARCHITECTURE}" in result.stderr


@pytest.mark.parametrize(
    ("command", "args"),
    [("classify", [str(PHOTOS[0])]), ("evaluate", ["--truth", "truth.csv"]), ("export", ["--output", "x.onnx"])],
)
def test_the_in_process_commands_refuse_a_models_file(tmp_path: Path, command: str, args: list[str]) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text("[models.densenet121]\n")
    result = run(command, *args, "--models-file", str(models_file))
    assert result.returncode == 2
    assert (
        f"{command} runs one model: give it with --model, --weights, --labels... (--models-file is for serve)"
    ) in result.stderr


def test_serve_checks_every_model_of_a_models_file_before_starting(tmp_path: Path, checkpoint_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        f"[models.densenet121]\nweights = \"{checkpoint_path}\"\n\n[models.xray]\nmodel = \"densenet121\"\n"
        "weights = \"missing.pth\"\n"
    )
    result = run("serve", "--port", "5999", "--host", "127.0.0.1", "--models-file", str(models_file))
    assert result.returncode == 2
    # Relative to the models file.
    assert f"weights file {tmp_path / 'missing.pth'} does not exist" in result.stderr


def test_serve_refuses_an_unreadable_models_file(tmp_path: Path) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text("port = 5000\n")
    result = run("serve", "--models-file", str(models_file))
    assert result.returncode == 2
    assert f"the models file {models_file} must hold [models.<name>] tables and nothing else" in result.stderr
