"""`densenet-server`, with the test double of gated_server.py installed first (see there)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from densenet_server import batching
from densenet_server.cli import main

GATE_ENV = "DENSENET_TEST_GATE"


class GatedBatcher(batching.Batcher):
    def __init__(self, predict: batching.Predict, *args: object, **kwargs: object) -> None:
        gate = Path(os.environ[GATE_ENV])
        entered = gate.with_name(gate.name + ".entered")

        def predict_when_open(batch: np.ndarray) -> np.ndarray:
            entered.touch()
            while gate.exists():
                time.sleep(0.005)
            return predict(batch)

        super().__init__(predict_when_open, *args, **kwargs)  # type: ignore[arg-type]


if __name__ == "__main__":
    # Only when run as the program (the server's master, and its engine process, which `serve` starts with
    # the same program): importing this module, as gated_server does, must not replace anything.
    batching.Batcher = GatedBatcher  # type: ignore[misc]
    sys.exit(main())
