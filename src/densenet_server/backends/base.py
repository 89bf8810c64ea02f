from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]

FP32 = "fp32"
BF16 = "bf16"


class Backend(Protocol):
    """Runs the model: float32 [N, 3, 224, 224] in, float32 logits [N, 1000] out."""

    name: str
    # "fp32", or the reduced precision the user opted into; reported in answers, /v2 metadata and logs.
    precision: str
    # Forward passes that may run beside each other, each on a share of the threads (empty: one at a time).
    lane_predicts: Sequence[Predict]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """A forward pass on all the backend's threads."""
        ...
