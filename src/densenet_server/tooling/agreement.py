"""How far the fast paths move the answers: a path's probabilities against the exact fp32 reference.

Used by the benchmark to report, next to each speed-up, what it costs: the largest and mean absolute
difference in probability over all the model's classes, and how often the top-1 class stays the same. Each
path's probabilities come from the service (local_service.probabilities_of), as a server would answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    path: str
    images: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float


def compare(path: str, candidate: np.ndarray, reference: np.ndarray) -> Agreement:
    difference = np.abs(candidate - reference)
    return Agreement(
        path,
        len(reference),
        float(difference.max()),
        float(difference.mean()),
        float(np.mean(candidate.argmax(axis=1) == reference.argmax(axis=1))),
    )
