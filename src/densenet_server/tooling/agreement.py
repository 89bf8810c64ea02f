"""How far the fast paths move the answers: a path's probabilities against the exact fp32 reference.

Used by the benchmark to report, next to each speed-up, what it costs: the largest and mean absolute
difference in probability over all 1000 classes, and how often the top-1 class stays the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..classifier import Classifier


@dataclass(frozen=True)
class Agreement:
    path: str
    images: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float


def probabilities(classifier: Classifier, encoded_images: Sequence[bytes], batch_size: int = 8) -> np.ndarray:
    rows = []
    for start in range(0, len(encoded_images), batch_size):
        batch = np.stack([classifier.prepare(data) for data in encoded_images[start : start + batch_size]])
        rows.append(classifier.probabilities(batch))
    return np.concatenate(rows)


def compare(path: str, candidate: np.ndarray, reference: np.ndarray) -> Agreement:
    difference = np.abs(candidate - reference)
    return Agreement(
        path,
        len(reference),
        float(difference.max()),
        float(difference.mean()),
        float(np.mean(candidate.argmax(axis=1) == reference.argmax(axis=1))),
    )
