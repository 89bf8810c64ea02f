"""The in-process pipeline: encoded image -> decoded -> preprocessed -> logits -> the JSON answer.

Used directly by the CLI, and by the HTTP service behind its batching queue.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import LoadedBackend, load_backend
from .config import Settings
from .decoding import decode_image
from .postprocess import softmax, top_k
from .preprocess import INPUT_SHAPE, RESIZE_SHORT_SIDE, preprocess
from .weights import CATEGORIES, MODEL_NAME


class Classifier:
    def __init__(self, loaded: LoadedBackend, max_image_pixels: int, jpeg_draft: bool = False) -> None:
        self.backend = loaded.backend
        self.weights = loaded.weights
        self.categories = CATEGORIES
        self.max_image_pixels = max_image_pixels
        self._reduce_to_short_side = RESIZE_SHORT_SIDE if jpeg_draft else None

    def prepare(self, data: bytes) -> np.ndarray:
        """Encoded bytes -> normalised float32 [3, 224, 224]; raises decoding.ImageError for bad input."""
        return preprocess(decode_image(data, self.max_image_pixels, self._reduce_to_short_side))

    def warm_up(self) -> None:
        """Forward passes at batch sizes 1 and 2, so the first real requests do not pay for lazy
        initialisation (ONNX Runtime and oneDNN prepare kernels per input shape)."""
        for predict in (self.backend.predict, *self.backend.lane_predicts):
            for size in (1, 2):
                predict(np.zeros((size, *INPUT_SHAPE), dtype=np.float32))

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return self.probabilities_from_logits(self.backend.predict(batch))

    @staticmethod
    def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def answer(self, probabilities: np.ndarray, k: int) -> dict[str, Any]:
        """The answer for one image: top-1 as the seed's `class` field, plus the top-k list."""
        best = top_k(probabilities, k, self.categories)
        result: dict[str, Any] = {
            "class": best[0]["label"],
            "index": best[0]["index"],
            "probability": best[0]["probability"],
            "top_k": best,
            "model": MODEL_NAME,
            "weights": self.weights.id,
            "weights_published": self.weights.published,
            "backend": self.backend.name,
            "precision": self.backend.precision,
        }
        if self.weights.warning:
            result["warning"] = self.weights.warning
        return result


def build_classifier(settings: Settings) -> Classifier:
    """The classifier the settings describe: backend, weights, decoding limits and fast paths."""
    return Classifier(load_backend(settings), settings.max_image_pixels, settings.jpeg_draft)
