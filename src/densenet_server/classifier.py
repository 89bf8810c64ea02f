"""The in-process pipeline: encoded image -> decoded -> preprocessed -> logits -> the JSON answer.

Used directly by the CLI, and by the HTTP service behind its batching queue.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import Backend
from .decoding import decode_image
from .model import MODEL_NAME, LoadedModel
from .postprocess import softmax, top_k
from .preprocess import INPUT_SHAPE, preprocess


class Classifier:
    def __init__(self, loaded: LoadedModel, backend: Backend, max_image_pixels: int) -> None:
        self.loaded = loaded
        self.backend = backend
        self.max_image_pixels = max_image_pixels

    @property
    def categories(self) -> list[str]:
        return self.loaded.categories

    def prepare(self, data: bytes) -> np.ndarray:
        """Encoded bytes -> normalised float32 [3, 224, 224]; raises decoding.ImageError for bad input."""
        return preprocess(decode_image(data, self.max_image_pixels))

    def warm_up(self) -> None:
        """One forward pass, so the first real request does not pay for lazy initialisation."""
        self.backend.predict(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.probabilities_from_logits(self.backend.predict(batch))

    @staticmethod
    def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def answer(self, probabilities: np.ndarray, k: int) -> dict[str, Any]:
        """The answer for one image: top-1 as the seed's `class` field, plus the top-k list."""
        best = top_k(probabilities, k, self.categories)
        weights = self.loaded.weights
        result: dict[str, Any] = {
            "class": best[0]["label"],
            "index": best[0]["index"],
            "probability": best[0]["probability"],
            "top_k": best,
            "model": MODEL_NAME,
            "weights": weights.id,
            "weights_published": weights.published,
        }
        if weights.warning:
            result["warning"] = weights.warning
        return result
