from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """Runs the model: float32 [N, 3, 224, 224] in, float32 logits [N, 1000] out."""

    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray: ...
