"""The benchmark's load generator counts every answer by status and measures only successes."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from densenet_server.tooling.loadgen import CONNECTION_ERROR, DISCONNECTED, RequestSpec, run_load, run_rate_async
from support.server_process import free_port


@pytest.fixture()
def tiny_server() -> Iterator[str]:
    app = Flask(__name__)

    @app.post("/echo")
    def echo() -> tuple[str, int]:
        # Every third request (by its number in the body) is refused, like an overloaded server.
        number = int(request.get_data())
        return ("no", 503) if number % 3 == 2 else ("ok", 200)

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_counts_statuses_and_images(tiny_server: str) -> None:
    result = run_load(
        tiny_server, lambda n: RequestSpec("POST", "/echo", str(n).encode(), images=2), concurrency=4,
        duration_s=30, max_requests=30,
    )
    assert result.requests == 30
    assert result.statuses == {"200": 20, "503": 10}
    assert (result.ok, result.failed, result.images_ok) == (20, 10, 40)
    assert len(result.latencies_s) == 20
    assert 0 < result.latency_ms(50) <= result.latency_ms(99)
    assert result.images_per_s > 0


def test_a_server_that_is_not_there_counts_as_connection_errors() -> None:
    result = run_load(
        f"http://127.0.0.1:{free_port()}", lambda n: RequestSpec("GET", "/"), concurrency=2, duration_s=5,
        max_requests=4,
    )
    assert result.statuses == {CONNECTION_ERROR: 4}
    assert result.ok == 0 and result.failed == 4


def test_open_loop_sends_on_schedule_whatever_the_answers(tiny_server: str) -> None:
    result = asyncio.run(
        run_rate_async(tiny_server, lambda n: RequestSpec("POST", "/echo", str(n).encode()), rate_per_s=50, duration_s=0.6)
    )
    # Starts at 0, 0.02, ... 0.58 s: exactly 30, whether or not answers were slow or refused.
    assert result.requests == 30
    assert result.statuses == {"200": 20, "503": 10}


@pytest.fixture()
def hang_up_server() -> Iterator[str]:
    """Accepts connections, reads the request, and closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_connection_that_breaks_after_the_request_counts_as_disconnected(hang_up_server: str) -> None:
    result = run_load(hang_up_server, lambda n: RequestSpec("GET", "/"), concurrency=1, duration_s=10, max_requests=2)
    assert result.statuses == {DISCONNECTED: 2}
