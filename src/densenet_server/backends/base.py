from __future__ import annotations

from typing import Protocol

import numpy as np

FP32 = "fp32"
BF16 = "bf16"


class Backend(Protocol):
    """Runs the model: float32 [N, 3, 224, 224] in, float32 logits [N, 1000] out."""

    name: str
    # "fp32", or the reduced precision the user opted into; reported in answers, /v2 metadata and logs.
    precision: str

    def predict(self, batch: np.ndarray) -> np.ndarray: ...
