"""Top-1 / top-5 accuracy on a labelled folder (CSV columns: file, label_index, ...)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classifier import Classifier


@dataclass(frozen=True)
class Accuracy:
    images: int
    top1: float
    top5: float
    unreadable: list[str]


def read_labels(labels_csv: Path) -> list[tuple[str, int]]:
    with labels_csv.open(newline="", encoding="utf-8") as stream:
        return [(row["file"], int(row["label_index"])) for row in csv.DictReader(stream)]


def evaluate(classifier: Classifier, labels_csv: Path, images_dir: Path, batch_size: int = 8) -> Accuracy:
    labelled = read_labels(labels_csv)
    top1 = top5 = count = 0
    unreadable: list[str] = []
    for start in range(0, len(labelled), batch_size):
        chunk: list[tuple[np.ndarray, int]] = []
        for name, label in labelled[start : start + batch_size]:
            try:
                chunk.append((classifier.prepare((images_dir / name).read_bytes()), label))
            except (OSError, ValueError):
                unreadable.append(name)
        if not chunk:
            continue
        probabilities = classifier.probabilities(np.stack([pixels for pixels, _ in chunk]))
        for row, (_, label) in zip(probabilities, chunk):
            best5 = np.argsort(-row, kind="stable")[:5]
            top1 += int(best5[0] == label)
            top5 += int(label in best5)
        count += len(chunk)
    return Accuracy(count, top1 / count if count else 0.0, top5 / count if count else 0.0, unreadable)
