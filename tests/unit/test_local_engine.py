from __future__ import annotations

import numpy as np
import pytest

from densenet_server.backends import LoadedBackend
from densenet_server.config import Settings
from densenet_server.engine.local import LocalEngine
from densenet_server.model_record import DENSENET121
from densenet_server.weights import WeightsInfo


class StandIn:
    """A backend that answers zeros, on whichever device it says."""

    name = "torch"
    precision = "fp16"
    lane_predicts = ()

    def __init__(self, device: str) -> None:
        self.device = device

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.zeros((len(batch), DENSENET121.num_classes), dtype=np.float32)

    def warm_up(self) -> None:
        pass


@pytest.mark.parametrize(("device", "batch"), [("cuda:0", 128), ("cpu", 4)])
def test_batching_defaults_follow_the_device_auto_resolved_to(device: str, batch: int) -> None:
    loaded = LoadedBackend(StandIn(device), WeightsInfo("stand-in", False, None), DENSENET121)
    engine = LocalEngine(Settings(device="auto"), loaded=loaded)
    engine.load()
    try:
        assert engine.batcher._max_batch_size == batch
        assert engine.info.device == device
    finally:
        engine.stop(1.0)
