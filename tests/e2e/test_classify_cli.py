"""`densenet-server classify`: the real command on folders with a broken file, CSV and JSON output; another
architecture with its own labels, multi-label."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from support.paths import REPO_IMAGES
from support.reference import reference_probabilities
from support.server_process import server_command
from support.several_models import SECOND_ARCHITECTURE, SECOND_LABELS, SecondModel, second_model_flags
from torch import nn

from densenet_server.classify_cli import CSV_COLUMNS, MULTI_LABEL_COLUMN

PHOTOS = sorted(REPO_IMAGES.glob("*.jpg"))
THRESHOLD = 0.9


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*server_command(), "classify", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The example photos (one in a sub-folder), a broken JPEG, an empty PNG and a non-image file."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for photo in PHOTOS[:-1]:
        shutil.copy(photo, root / photo.name)
    shutil.copy(PHOTOS[-1], root / "sub" / PHOTOS[-1].name)
    (root / "broken.jpg").write_text("this is not a JPEG")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image, and not picked up from a folder")
    return root


def expected_top5(model: nn.Module, photos: list[Path]) -> dict[str, list[int]]:
    probabilities = reference_probabilities(model, photos)
    return {photo.name: list(np.argsort(-row, kind="stable")[:5]) for photo, row in zip(photos, probabilities)}


def test_classify_folder_to_csv_with_broken_files(
    folder: Path, tmp_path: Path, checkpoint_path: Path, reference_model: nn.Module
) -> None:
    output = tmp_path / "results.csv"
    result = run(str(folder), "--output", str(output), "--weights", str(checkpoint_path), "--max-batch-size", "2")
    assert result.returncode == 1, result.stderr  # some files failed
    assert "skipping" in result.stderr and "broken.jpg" in result.stderr and "empty.png" in result.stderr
    assert "image/s" in result.stderr  # tqdm's progress bar
    with output.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["file", "rank", "index", "label", "probability", "error"]
    by_file: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_file.setdefault(Path(row["file"]).name, []).append(row)
    assert set(by_file) == {p.name for p in PHOTOS} | {"broken.jpg", "empty.png"}
    for name in ("broken.jpg", "empty.png"):
        (row,) = by_file[name]
        assert row["error"] and row["rank"] == "" and row["label"] == ""
    expected = expected_top5(reference_model, PHOTOS)
    for photo in PHOTOS:
        rows_of_photo = by_file[photo.name]
        assert [int(r["rank"]) for r in rows_of_photo] == [1, 2, 3, 4, 5]
        assert [int(r["index"]) for r in rows_of_photo] == expected[photo.name]
        assert all(r["error"] == "" and 0 < float(r["probability"]) <= 1 for r in rows_of_photo)


def test_classify_files_to_json_with_top_k(tmp_path: Path, checkpoint_path: Path, reference_model: nn.Module) -> None:
    output = tmp_path / "results.json"
    result = run(*map(str, PHOTOS[:2]), "--output", str(output), "--top-k", "3", "--weights", str(checkpoint_path))
    assert result.returncode == 0, result.stderr
    documents = json.loads(output.read_text())
    assert [Path(d["file"]).name for d in documents] == [p.name for p in PHOTOS[:2]]
    expected = expected_top5(reference_model, PHOTOS[:2])
    for document in documents:
        assert set(document) == {"file", "class", "index", "probability", "top_k"}
        assert [e["index"] for e in document["top_k"]] == expected[Path(document["file"]).name][:3]
        assert document["class"] == document["top_k"][0]["label"]


def test_classify_to_stdout_and_missing_paths(tmp_path: Path, checkpoint_path: Path) -> None:
    result = run(str(PHOTOS[0]), str(tmp_path / "nowhere"), "--top-k", "1", "--no-progress",
                 "--weights", str(checkpoint_path))
    assert result.returncode == 1
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [Path(r["file"]).name for r in rows] == ["nowhere", PHOTOS[0].name]
    assert rows[0]["error"] == "no such file or folder"
    assert "image/s" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "{tmp}/out.xlsx"], "argument --output/-o: the results file must end in .csv or .json"),
        (["--top-k", "0"], "argument --top-k: must be a positive integer"),
        ([], "the following arguments are required: PATH"),
    ],
    ids=["output-suffix", "top-k", "no-path"],
)
def test_classify_rejects_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    paths = [str(PHOTOS[0])] if args else []
    result = run(*paths, *(arg.format(tmp=tmp_path) for arg in args))
    # Refused by the parser, before any model is loaded: usage on stderr and exit status 2, naming the rule.
    assert result.returncode == 2, result.stderr
    assert f"densenet-server classify: error: {message}" in result.stderr
    assert result.stdout == ""


def second_model_args(second_model: SecondModel) -> list[str]:
    return second_model_flags(second_model, "--multi-label", "--threshold", str(THRESHOLD))


@pytest.fixture(scope="module")
def second_expected(second_model: SecondModel) -> np.ndarray:
    """torchvision's sigmoid probabilities of the 14-class ResNet-18 on the photos, well clear of the threshold
    (else which side of it a class falls would be float noise, not the code)."""
    expected = reference_probabilities(second_model.model, PHOTOS, architecture=SECOND_ARCHITECTURE, multi_label=True)
    assert np.abs(expected - THRESHOLD).min() > 10 * PARITY_TOLERANCE
    return expected


def test_classify_a_multi_label_model_prints_its_labels(second_model: SecondModel, second_expected: np.ndarray) -> None:
    result = run(*map(str, PHOTOS), "--top-k", "3", "--no-progress", *second_model_args(second_model))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(",") == [*CSV_COLUMNS, MULTI_LABEL_COLUMN]
    rows = list(csv.DictReader(lines))
    for photo, probabilities in zip(PHOTOS, second_expected):
        ranking = np.argsort(-probabilities, kind="stable")
        labelled = int((probabilities >= THRESHOLD).sum())
        # The three most probable, and every further class at or above the threshold, in rank order.
        expected_indices = list(ranking[: max(3, labelled)])
        mine = [row for row in rows if Path(row["file"]).name == photo.name]
        assert [int(row["index"]) for row in mine] == expected_indices, photo.name
        assert [int(row["rank"]) for row in mine] == list(range(1, len(expected_indices) + 1))
        assert [row["label"] for row in mine] == [SECOND_LABELS[index] for index in expected_indices]
        assert [row[MULTI_LABEL_COLUMN] for row in mine] == [
            "true" if probabilities[index] >= THRESHOLD else "false" for index in expected_indices
        ]
        served = np.array([float(row["probability"]) for row in mine])
        assert np.abs(served - probabilities[expected_indices]).max() < PARITY_TOLERANCE
    assert 0 < sum(row[MULTI_LABEL_COLUMN] == "true" for row in rows) < len(rows), "both sides of the threshold"


def test_classify_a_multi_label_model_to_json_adds_labels_and_threshold(
    tmp_path: Path, second_model: SecondModel, second_expected: np.ndarray
) -> None:
    output = tmp_path / "results.json"
    result = run(*map(str, PHOTOS), "--output", str(output), "--top-k", "2", *second_model_args(second_model))
    assert result.returncode == 0, result.stderr
    documents = json.loads(output.read_text())
    for document, probabilities in zip(documents, second_expected):
        assert set(document) == {"file", "class", "index", "probability", "top_k", "labels", "threshold"}
        assert document["threshold"] == THRESHOLD
        above = [int(i) for i in np.argsort(-probabilities, kind="stable") if probabilities[i] >= THRESHOLD]
        assert [entry["index"] for entry in document["labels"]] == above
        assert [entry["label"] for entry in document["labels"]] == [SECOND_LABELS[i] for i in above]
        assert [entry["index"] for entry in document["top_k"]] == list(np.argsort(-probabilities, kind="stable")[:2])

