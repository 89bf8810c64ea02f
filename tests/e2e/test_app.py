"""The app factory in-process (Flask's test client), for states the real server passes too fast."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.server_process import ServerProcess
from torch import nn

from densenet_server.app import create_app
from densenet_server.config import Settings


def test_not_ready_before_the_model_is_loaded() -> None:
    client = create_app(Settings()).test_client()  # the service is never started
    assert client.get("/").status_code == 200
    assert client.get("/").get_json()["ready"] is False
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "not_ready"
    response = client.get("/inference/cat.jpg")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "not_ready"


def test_server_stops_when_the_weights_cannot_load(tmp_path: Path) -> None:
    weights = tmp_path / "linear.pth"
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    server = ServerProcess.start(["--weights", str(weights)], wait_ready=False)
    with pytest.raises(RuntimeError, match="not a DenseNet-121 state dict"):
        server.wait_ready(timeout_s=60)
    assert server.process.wait(30) != 0
