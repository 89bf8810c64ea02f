"""Overload is answered, not queued forever: a full queue is refused at once with 503 and Retry-After,
and a request past its deadline gets 504; the server stays ready meanwhile. End to end, with the forward
pass held at a gate (tests/support/gated_server.py) so that the queue's state is the test's choice."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from support.gated_server import Gate, gated_args, metric, start_gated_server, wait_until
from support.server_process import ServerProcess

from densenet_server.config import load_settings
from densenet_server.layout import choose_layout
from densenet_server.model_record import DEFAULT_MODEL as MODEL
from densenet_server.server import overload_warning

CAT = (Path(__file__).resolve().parents[2] / "images" / "cat.jpg").read_bytes()
QUEUE_IMAGES = 2


def post_cat(server: ServerProcess) -> requests.Response:
    return server.post("/inference", data=CAT, headers={"Content-Type": "image/jpeg"})


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    gate = Gate(tmp_path_factory.mktemp("gate"))
    yield gate
    gate.open()


@pytest.fixture(scope="module")
def tiny_queue_server(checkpoint_path: Path, images_dir: Path, gate: Gate) -> Iterator[ServerProcess]:
    args = gated_args(checkpoint_path, images_dir, "--max-queue-images", str(QUEUE_IMAGES),
                      "--max-images-per-request", "2")
    with start_gated_server(args, gate) as server:
        yield server


def assert_overloaded(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "overloaded"
    assert "queue is full" in response.json()["error"]["message"]


def test_full_queue_is_refused_at_once_and_the_server_stays_ready(tiny_queue_server: ServerProcess, gate: Gate) -> None:
    server = tiny_queue_server
    with ThreadPoolExecutor(1 + QUEUE_IMAGES) as pool, gate.closed():
        in_model = pool.submit(post_cat, server)
        gate.wait_entered()
        queued = [pool.submit(post_cat, server) for _ in range(QUEUE_IMAGES)]
        wait_until(lambda: metric(server, "densenet_queue_images", model=MODEL) == QUEUE_IMAGES, "a full queue")
        decoded_before = metric(server, "densenet_stage_duration_seconds_count", model=MODEL, stage="preprocess")

        # Each of these would wait until the gate opens if it were queued: answered now, it was not.
        assert_overloaded(post_cat(server))
        assert_overloaded(server.post("/inference", files=[("file", ("a.jpg", CAT)), ("file", ("b.jpg", CAT))]))
        v2 = server.post("/v2/models/densenet121/infer", json={"inputs": [
            {"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(CAT).decode()]}]})
        assert v2.status_code == 503 and int(v2.headers["Retry-After"]) >= 1
        assert "queue is full" in v2.json()["error"]
        # Refused before their images were decoded: shedding costs the overloaded server almost nothing.
        assert metric(server, "densenet_stage_duration_seconds_count", model=MODEL, stage="preprocess") == decoded_before

        # Shedding is not unreadiness: the pod keeps its place behind the load balancer.
        assert server.get("/ready").json() == {"status": "ready", "model": "densenet121"}
        assert server.get("/").json()["ready"] is True
        assert server.get("/v2/health/ready").status_code == 200

        gate.open()
        for accepted in [in_model, *queued]:
            assert accepted.result().status_code == 200
            assert accepted.result().json()["class"]
    assert post_cat(server).status_code == 200


@pytest.fixture(scope="module")
def short_deadline_server(checkpoint_path: Path, images_dir: Path, gate: Gate) -> Iterator[ServerProcess]:
    args = gated_args(checkpoint_path, images_dir, "--request-timeout-s", "1", "--shutdown-grace-s", "5")
    with start_gated_server(args, gate) as server:
        yield server


def test_requests_past_their_deadline_get_504_and_never_reach_the_model(
    short_deadline_server: ServerProcess, gate: Gate
) -> None:
    server = short_deadline_server
    # None yet on a fresh server: the model's series starts with its first batch.
    batches_before = metric(server, "densenet_inference_batch_size_count", missing=0.0, model=MODEL)
    with ThreadPoolExecutor(2) as pool, gate.closed():
        in_model = pool.submit(post_cat, server)
        gate.wait_entered()
        queued = pool.submit(post_cat, server)
        for late in (in_model, queued):
            response = late.result()
            assert response.status_code == 504, response.text
            assert response.json()["error"]["code"] == "deadline_exceeded"
            assert "deadline" in response.json()["error"]["message"]
    wait_until(lambda: metric(server, "densenet_inference_batch_size_count", missing=0.0, model=MODEL) == batches_before + 1,
               "the held forward pass to finish")
    assert post_cat(server).status_code == 200
    # The queued request gave up before its turn: only the held pass and the last request ran.
    assert metric(server, "densenet_inference_batch_size_count", model=MODEL) == batches_before + 2
    assert server.get("/ready").status_code == 200


def test_too_few_http_threads_to_fill_the_queue_are_warned_about() -> None:
    assert overload_warning(choose_layout(load_settings({}, environ={}))[0]) is None  # the defaults shed load
    settings = load_settings({"http_threads": 32, "workers": 1, "max_queue_images": 64, "max_batch_size": 4}, environ={})
    warning = overload_warning(settings)
    assert warning == (
        "--workers x --http-threads (32) is not above the queue plus a batch (68): under overload, requests "
        "will wait for a free thread instead of being refused with 503"
    )
