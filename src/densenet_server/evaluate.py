"""`densenet-server evaluate`: how well the served model labels a folder whose right answers a CSV gives
(--truth, columns file,label_index: indices into the model's own classes, whatever they are).

A single-label (softmax) model is scored by top-1 and top-5 accuracy, one label_index per file. A
multi-label model (--multi-label) has any number of right classes per image, so its label_index lists them
separated by ';' (empty: none), and it is scored on the classes at or above its threshold, as its answers'
``labels``: exact match (the whole set right), and precision, recall and F1 over every (image, class) pair.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .local_service import file_probabilities
from .model_record import ModelRecord
from .service import InferenceService

TOP_K = 5
LABEL_SEPARATOR = ";"


class TruthError(ValueError):
    """The truth CSV cannot be read, or names classes the model does not have."""


@dataclass(frozen=True)
class Truth:
    file: str
    labels: tuple[int, ...]


@dataclass(frozen=True)
class Accuracy:
    images: int
    top1: float
    top5: float
    unreadable: list[str]

    def summary(self) -> str:
        return f"images: {self.images}  top-1: {self.top1:.4f}  top-5: {self.top5:.4f}"


@dataclass(frozen=True)
class MultiLabelScores:
    images: int
    exact_match: float
    precision: float
    recall: float
    f1: float
    threshold: float
    unreadable: list[str]

    def summary(self) -> str:
        return (
            f"images: {self.images}  exact match: {self.exact_match:.4f}  precision: {self.precision:.4f}  "
            f"recall: {self.recall:.4f}  F1: {self.f1:.4f}  (threshold {self.threshold:g})"
        )


def read_truth(path: Path, record: ModelRecord) -> list[Truth]:
    """The CSV's rows, checked against the model: every index one of its classes, one per row unless it is
    multi-label."""
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            if not {"file", "label_index"} <= set(reader.fieldnames or ()):
                raise TruthError(f"{path} needs the columns file and label_index")
            return [_truth(row, record, f"{path}, line {reader.line_num}") for row in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise TruthError(f"cannot read the truth file {path}: {exc}") from exc


def _truth(row: dict[str, str], record: ModelRecord, where: str) -> Truth:
    raw = (row["label_index"] or "").strip()
    parts = [part.strip() for part in raw.split(LABEL_SEPARATOR)] if raw else []
    if not record.multi_label and len(parts) != 1:
        raise TruthError(
            f"{where}: label_index {raw!r}: {record.name} gives one class per image, so each file needs "
            "exactly one label_index (several, separated by ';', are for a --multi-label model)"
        )
    try:
        labels = tuple(int(part) for part in parts)
    except ValueError:
        raise TruthError(f"{where}: label_index {raw!r} is not a class index (an integer)") from None
    for label in labels:
        if not 0 <= label < record.num_classes:
            raise TruthError(
                f"{where}: label_index {label} is not a class of {record.name} (0 to {record.num_classes - 1})"
            )
    return Truth(row["file"], labels)


def evaluate(service: InferenceService, truth_csv: Path, images_dir: Path) -> Accuracy | MultiLabelScores:
    record = service.info.record
    truth = read_truth(truth_csv, record)
    rows: list[np.ndarray] = []
    labels: list[tuple[int, ...]] = []
    unreadable: list[str] = []
    for item, (_, result) in zip(truth, file_probabilities(service, [images_dir / item.file for item in truth])):
        if isinstance(result, np.ndarray):
            rows.append(result)
            labels.append(item.labels)
        else:
            unreadable.append(item.file)
    probabilities = np.array(rows).reshape(len(rows), record.num_classes)
    if record.multi_label:
        return multi_label_scores(probabilities, labels, record.threshold, unreadable)
    return accuracy(probabilities, [label for (label,) in labels], unreadable)


def accuracy(probabilities: np.ndarray, labels: Sequence[int], unreadable: list[str]) -> Accuracy:
    """Top-1 and top-5 of softmax rows [N, classes] against one label each (ties: lower index first)."""
    if not len(labels):
        return Accuracy(0, 0.0, 0.0, unreadable)
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
    truth = np.asarray(labels)[:, np.newaxis]
    return Accuracy(
        len(labels), float(np.mean(best[:, 0] == truth[:, 0])), float(np.mean((best == truth).any(axis=1))), unreadable
    )


def multi_label_scores(
    probabilities: np.ndarray, labels: Sequence[tuple[int, ...]], threshold: float, unreadable: list[str]
) -> MultiLabelScores:
    """Sigmoid rows [N, classes] against each image's set of labels; a class is predicted at or above
    ``threshold``. A ratio with nothing to count (no prediction, no label) is 0."""
    predicted = probabilities >= threshold
    truth = np.zeros_like(predicted)
    for row, image_labels in enumerate(labels):
        truth[row, list(image_labels)] = True
    hits = int((predicted & truth).sum())
    precision = _ratio(hits, int(predicted.sum()))
    recall = _ratio(hits, int(truth.sum()))
    return MultiLabelScores(
        images=len(labels),
        exact_match=float((predicted == truth).all(axis=1).mean()) if len(labels) else 0.0,
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        threshold=threshold,
        unreadable=unreadable,
    )


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
