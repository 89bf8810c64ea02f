from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from ..precision import BF16, FP16, FP32, TF32

__all__ = ["BF16", "FP16", "FP32", "TF32", "Backend", "Predict"]

Predict = Callable[[np.ndarray], np.ndarray]


class Backend(Protocol):
    """Runs the model: float32 pixels [N, 3, crop, crop] in, float32 logits [N, classes] out (the sizes of the
    served record: model_record.Preprocessing.input_shape, ModelRecord.num_classes)."""

    name: str
    # The precision served (fp32 on the CPU unless bf16 was opted into; fp16 by default on CUDA, see
    # precision.py); reported in answers, /v2 metadata and logs.
    precision: str
    # Where the forward pass runs: "cpu" or "cuda:N" (device.resolve_device); reported beside backend.
    device: str
    # Forward passes that may run beside each other, each on a share of the threads (empty: one at a time).
    lane_predicts: Sequence[Predict]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """A forward pass on all the backend's threads."""
        ...
