"""The process model of `serve`: HTTP fronts and one engine process, seen from outside as one server."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
from support.gated_server import metric
from support.paths import CAT_JPEG
from support.server_process import ServerProcess
from support.waiting import wait_until

from densenet_server.engine.launcher import ENGINE_COMMAND, LOAD_FAILED
from densenet_server.model_record import DEFAULT_MODEL as MODEL

CAT = CAT_JPEG.read_bytes()


def engine_process(server: ServerProcess) -> psutil.Process:
    (engine,) = [child for child in psutil.Process(server.process.pid).children() if ENGINE_COMMAND in child.cmdline()]
    return engine


def test_two_fronts_share_one_engine_and_count_together(checkpoint_path: Path, images_dir: Path) -> None:
    args = ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--workers", "2", "--threads", "2"]
    with ServerProcess.start(args) as server:
        children = psutil.Process(server.process.pid).children()
        assert len(children) == 3  # two fronts and the engine
        layout = server.get("/").json()["layout"]
        assert (layout["fronts"], layout["engine_threads"], layout["device"]) == (2, 2, "cpu")
        assert server.get("/v2").json()["layout"] == layout
        expected = server.post("/inference", data=CAT, headers={"Content-Type": "image/jpeg"}).json()
        for _ in range(11):
            answer = server.post("/inference", data=CAT, headers={"Content-Type": "image/jpeg"}).json()
            assert answer == expected
        assert expected["device"] == "cpu" and expected["backend"] == "onnxruntime"
        # Each front counts its own requests; /metrics, from whichever front answers, adds them all up.
        assert metric(server, "densenet_http_requests_total", method="POST", route="/inference", status="200") == 12
        assert metric(server, "densenet_images_classified_total", model=MODEL) == 12
        # The engine's own numbers are there too.
        assert metric(server, "densenet_inference_batch_size_sum", model=MODEL) == 12
        assert metric(server, "densenet_model_ready", model=MODEL) == 1
        assert metric(
            server, "densenet_model_info", model=MODEL, backend="onnxruntime", precision="fp32",
            device="cpu", weights=expected["weights"], weights_published="false",
        ) == 1
        assert server.stop() == 0


def test_the_server_stops_when_its_engine_dies(checkpoint_path: Path) -> None:
    server = ServerProcess.start(["--weights", str(checkpoint_path)])
    try:
        fronts = [child for child in psutil.Process(server.process.pid).children() if child != engine_process(server)]
        engine_process(server).send_signal(signal.SIGKILL)
        # Not a server that stays up answering 503 for ever: the supervisor must restart it.
        assert server.process.wait(30) == LOAD_FAILED
        assert f"the engine process of model {MODEL} died" in server.log()
        # ...and no front is left behind.
        wait_until(lambda: not any(front.is_running() for front in fronts), "the fronts to exit", timeout_s=10)
    finally:
        server.stop()
