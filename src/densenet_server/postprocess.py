"""Logits -> probabilities -> the answer (build_answer) that every route and command gives for an image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .model_record import SIGMOID, ModelRecord

if TYPE_CHECKING:
    from .engine.base import ModelInfo


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, so tiny probabilities keep their precision."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Each class's own probability (multi-label), in float64; stable for logits of either sign."""
    values = logits.astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -values))


def probabilities(logits: np.ndarray, record: ModelRecord) -> np.ndarray:
    """What the record's output kind makes of a batch of logits [N, classes]."""
    return sigmoid(logits) if record.output == SIGMOID else softmax(logits)


def top_k(probabilities: np.ndarray, k: int, categories: Sequence[str]) -> list[dict[str, Any]]:
    """The k most probable classes of one image, most probable first (ties: lower index first)."""
    k = max(1, min(k, probabilities.shape[-1]))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [_entry(int(i), probabilities, categories) for i in order]


def at_or_above(probabilities: np.ndarray, threshold: float, categories: Sequence[str]) -> list[dict[str, Any]]:
    """Every class whose probability is at least ``threshold``, most probable first (multi-label)."""
    chosen = np.flatnonzero(probabilities >= threshold)
    order = chosen[np.argsort(-probabilities[chosen], kind="stable")]
    return [_entry(int(i), probabilities, categories) for i in order]


def _entry(index: int, probabilities: np.ndarray, categories: Sequence[str]) -> dict[str, Any]:
    return {"index": index, "label": categories[index], "probability": float(probabilities[index])}


def build_answer(info: ModelInfo, probabilities: np.ndarray, k: int) -> dict[str, Any]:
    """The answer for one image: top-1 as the seed's `class` field, plus the top-k list; for a multi-label
    model also every class at or above its threshold."""
    best = top_k(probabilities, k, info.categories)
    result: dict[str, Any] = {
        "class": best[0]["label"],
        "index": best[0]["index"],
        "probability": best[0]["probability"],
        "top_k": best,
    }
    if info.record.multi_label:
        result["labels"] = at_or_above(probabilities, info.record.threshold, info.categories)
        result["threshold"] = info.record.threshold
    result |= {
        "model": info.name,
        "weights": info.weights.id,
        "weights_published": info.weights.published,
        "backend": info.backend,
        "precision": info.precision,
        "device": info.device,
    }
    if info.weights.warning:
        result["warning"] = info.weights.warning
    return result
