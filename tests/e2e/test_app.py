"""The server process when its model cannot load: it must stop, not serve. (The app's states before the
model is loaded are tested in-process, in tests/unit/test_routes_inprocess.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.server_process import ServerProcess
from torch import nn


def test_server_stops_when_the_weights_cannot_load(tmp_path: Path) -> None:
    weights = tmp_path / "linear.pth"
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    server = ServerProcess.start(["--weights", str(weights)], wait_ready=False)
    with pytest.raises(RuntimeError, match="is not a densenet121 state dict: it has no classifier.weight"):
        server.wait_ready(timeout_s=60)
    assert server.process.wait(30) != 0
