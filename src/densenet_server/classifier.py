"""The in-process pipeline: encoded image -> decoded -> preprocessed -> logits -> the JSON answer.

Used directly by the CLI and the benchmark; the HTTP service shares its answer (build_answer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import LoadedBackend, load_backend
from .config import Settings
from .decoding import decode_image
from .engine.base import ModelInfo
from .engine.local import model_info, warm_up
from .postprocess import at_or_above, top_k
from .postprocess import probabilities as output_probabilities
from .preprocess import preprocess


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


class Classifier:
    def __init__(self, loaded: LoadedBackend, max_image_pixels: int, jpeg_draft: bool = False) -> None:
        self.backend = loaded.backend
        self.weights = loaded.weights
        self.record = loaded.record
        self.info = model_info(loaded.backend, loaded.weights, loaded.record)
        self.categories = self.info.categories
        self.max_image_pixels = max_image_pixels
        self._reduce_to_short_side = self.record.preprocessing.resize_size if jpeg_draft else None

    def prepare(self, data: bytes) -> np.ndarray:
        """Encoded bytes -> normalised float32 [3, crop, crop]; raises decoding.ImageError for bad input."""
        image = decode_image(data, self.max_image_pixels, self._reduce_to_short_side)
        return preprocess(image, self.record.preprocessing)

    def warm_up(self) -> None:
        """So that the first real requests do not pay for lazy initialisation (engine.local.warm_up)."""
        warm_up(self.backend, self.record.preprocessing.input_shape)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.probabilities_from_logits(self.backend.predict(batch))

    def probabilities_from_logits(self, logits: np.ndarray) -> np.ndarray:
        return output_probabilities(logits, self.record)

    def answer(self, probabilities: np.ndarray, k: int) -> dict[str, Any]:
        return build_answer(self.info, probabilities, k)


def build_classifier(settings: Settings) -> Classifier:
    """The classifier the settings describe: backend, weights, decoding limits and fast paths."""
    return Classifier(load_backend(settings), settings.max_image_pixels, settings.jpeg_draft)
