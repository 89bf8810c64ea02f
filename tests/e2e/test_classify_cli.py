"""`densenet-server classify`: the real command on folders with a broken file, CSV and JSON output."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from support.paths import REPO_IMAGES
from support.reference import reference_probabilities
from support.server_process import server_command
from torch import nn

PHOTOS = sorted(REPO_IMAGES.glob("*.jpg"))


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
        (["--top-k", "0"], "argument --top-k: must be an integer from 1 to 1000"),
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
