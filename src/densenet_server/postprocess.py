"""Logits -> probabilities -> the top-k answer shape shared by every route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NUM_CLASSES = 1000


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, so tiny probabilities keep their precision."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_k(probabilities: np.ndarray, k: int, categories: Sequence[str]) -> list[dict[str, Any]]:
    """The k most probable classes of one image, most probable first (ties: lower index first)."""
    k = max(1, min(k, probabilities.shape[-1]))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        {"index": int(i), "label": categories[i], "probability": float(probabilities[i])} for i in order
    ]
