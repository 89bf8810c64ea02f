"""Graceful shutdown: on SIGTERM the server says "not ready", refuses new connections, answers every
request it had accepted, and exits 0 within its grace period. End to end, with requests held in flight
at a gate in front of the model (tests/support/gated_server.py)."""

from __future__ import annotations

import http.client
import json
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests
from support.gated_server import Gate, metric, refuses_connections, start_gated_server
from support.paths import CAT_JPEG
from support.server_process import ServerProcess
from support.waiting import wait_for, wait_until

from densenet_server.config import load_settings
from densenet_server.engine.launcher import ENGINE_COMMAND
from densenet_server.engine.paths import RunPaths
from densenet_server.layout import choose_layout
from densenet_server.model_record import DEFAULT_MODEL as MODEL
from densenet_server.server import DrainingWorker, GunicornServer

CAT = CAT_JPEG.read_bytes()
IN_FLIGHT = 5


def post_cat(server: ServerProcess) -> requests.Response:
    return server.post("/inference", data=CAT, headers={"Content-Type": "image/jpeg"})


def ready_status(connection: http.client.HTTPConnection) -> tuple[int, dict]:
    connection.request("GET", "/ready")
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def server_args(checkpoint_path: Path, images_dir: Path, *extra: str) -> list[str]:
    return ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--threads", "1",
            "--max-batch-size", "1", "--max-batch-wait-ms", "0", "--http-threads", "16", *extra]


def test_sigterm_drains_every_accepted_request_then_exits_0(
    checkpoint_path: Path, images_dir: Path, tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    server = start_gated_server(server_args(checkpoint_path, images_dir), gate)
    try:
        kept_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        assert ready_status(kept_alive)[0] == 200
        with ThreadPoolExecutor(IN_FLIGHT) as pool, gate.closed():
            in_flight = [pool.submit(post_cat, server) for _ in range(IN_FLIGHT)]
            gate.wait_entered()
            wait_until(lambda: metric(server, "densenet_queue_images", model=MODEL) == IN_FLIGHT - 1, "every request accepted")

            server.process.send_signal(signal.SIGTERM)
            # Not ready at once, as seen on a connection the server had already accepted (polled, as
            # the signal reaches the worker asynchronously; bounded, so a server that stays ready fails)...
            status, body = wait_for(lambda: ready_status(kept_alive), lambda answer: answer[0] != 200,
                                    "/ready to stop answering 200 after SIGTERM", timeout_s=10)
            assert status == 503 and body["error"]["code"] == "shutting_down"
            # ...and no new connection is taken any more, while the accepted requests still wait.
            wait_until(lambda: refuses_connections(server.port), "new connections to be refused")
            assert not any(request.done() for request in in_flight)

            gate.open()
            for request in in_flight:
                assert request.result().status_code == 200
                assert request.result().json()["class"]
        assert server.process.wait(60) == 0
        log = server.log()
        assert "SIGABRT" not in log and "Traceback" not in log and "SIGKILL" not in log
    finally:
        server.stop()


def sigterm_pending(pid: int) -> bool:
    """Whether SIGTERM waits for delivery to process ``pid`` (its status' pending-signal masks)."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (signal.SIGTERM - 1)) for mask in masks)


def test_connections_waiting_in_the_backlog_at_sigterm_are_answered(checkpoint_path: Path, images_dir: Path) -> None:
    """Under load gthread accepts one connection per loop; those the kernel holds when SIGTERM comes have
    sent their requests already, and must be answered rather than reset."""
    with ServerProcess.start(server_args(checkpoint_path, images_dir)) as server:
        # The master's children: the HTTP front (a forked gunicorn worker) and the engine process.
        (worker,) = [child for child in psutil.Process(server.process.pid).children() if ENGINE_COMMAND not in child.cmdline()]
        worker.suspend()
        try:
            waiting = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=60) for _ in range(3)]
            for connection in waiting:
                connection.request("POST", "/inference", body=CAT, headers={"Content-Type": "image/jpeg"})
            server.process.send_signal(signal.SIGTERM)
            wait_until(lambda: sigterm_pending(worker.pid), "the server to pass SIGTERM on to its worker")
        finally:
            worker.resume()
        for connection in waiting:
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["class"]
        assert server.process.wait(60) == 0


def test_a_request_held_past_the_grace_period_still_gets_an_answer_and_the_server_exits_0(
    checkpoint_path: Path, images_dir: Path, tmp_path: Path
) -> None:
    """The gate never opens: the deadline (at most the grace period) answers the request, and the server
    does not wait for the stuck forward pass beyond its grace period."""
    gate = Gate(tmp_path)
    args = server_args(checkpoint_path, images_dir, "--request-timeout-s", "2", "--shutdown-grace-s", "3")
    server = start_gated_server(args, gate)
    try:
        with ThreadPoolExecutor(1) as pool, gate.closed():
            stuck = pool.submit(post_cat, server)
            gate.wait_entered()
            server.process.send_signal(signal.SIGTERM)
            response = stuck.result()
            assert response.status_code == 504 and response.json()["error"]["code"] == "deadline_exceeded"
            assert server.process.wait(60) == 0
    finally:
        server.stop()


def test_gunicorn_gets_the_grace_period_and_the_draining_worker(tmp_path: Path) -> None:
    settings, layout = choose_layout(load_settings({"shutdown_grace_s": 7, "request_timeout_s": 5.0}, environ={}))
    config = GunicornServer(settings, layout, RunPaths(tmp_path), [settings]).cfg
    assert config.graceful_timeout == 7
    assert config.worker_class is DrainingWorker
    assert config.accesslog is None  # the app writes the access log itself
