"""Access logs (one JSON line per request) and request ids (X-Request-ID kept or made, and returned)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.access_lines import access_line
from support.server_process import ServerProcess

from densenet_server import access_log
from densenet_server.app import create_app
from densenet_server.config import Settings

CAT = (Path(__file__).resolve().parents[2] / "images" / "cat.jpg").read_bytes()
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
FIELDS = {
    "time", "request_id", "method", "route", "path", "status", "latency_ms", "body_bytes", "image_bytes",
    "images", "batch_size", "remote_addr",
}


def test_an_incoming_request_id_is_kept_returned_and_logged(server: ServerProcess) -> None:
    request_id = f"client-{uuid.uuid4()}"
    response = server.post("/inference?top_k=2", data=CAT, headers={"Content-Type": "image/jpeg", "X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    line = access_line(server.log(), request_id)
    assert set(line) == FIELDS
    assert (line["method"], line["route"], line["path"], line["status"]) == ("POST", "/inference", "/inference", 200)
    assert (line["body_bytes"], line["image_bytes"], line["images"]) == (len(CAT), len(CAT), 1)
    assert line["batch_size"] >= 1 and line["latency_ms"] > 0
    assert line["remote_addr"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_a_request_without_an_id_gets_a_new_one(server: ServerProcess) -> None:
    response = server.get("/inference/cat.jpg")
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    line = access_line(server.log(), request_id)
    assert (line["route"], line["path"]) == ("/inference/<path:filename>", "/inference/cat.jpg")
    assert line["image_bytes"] == len(CAT) and line["images"] == 1 and line["body_bytes"] is None


@pytest.mark.parametrize("unusable", ["two words", "x" * 129, "<script>", "id;rm -rf", "caf\u00e9"])
def test_an_unusable_incoming_id_is_replaced(server: ServerProcess, unusable: str) -> None:
    response = server.get("/", headers={"X-Request-ID": unusable.encode("utf-8")})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
    assert unusable not in server.log()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "route", "status"),
    [
        ("get", "/no/such/page", {}, "<unmatched>", 404),
        ("post", "/inference", {"files": {"file": ("x.jpg", b"junk")}}, "/inference", 400),
        ("get", "/v2/models/nope", {}, "/v2/models/<model_name>", 404),
        ("get", "/inference/../etc/passwd", {}, "<unmatched>", 404),
    ],
)
def test_errors_carry_and_log_the_request_id(
    server: ServerProcess, method: str, path: str, kwargs: dict, route: str, status: int
) -> None:
    request_id = f"err-{uuid.uuid4().hex}"
    response = getattr(server, method)(path, headers={"X-Request-ID": request_id}, **kwargs)
    assert response.status_code == status and response.headers["X-Request-ID"] == request_id
    line = access_line(server.log(), request_id)
    assert (line["route"], line["status"], line["images"], line["batch_size"]) == (route, status, 0, None)


def test_several_images_are_logged_with_their_total_size(server: ServerProcess) -> None:
    files = [("file", (f"cat{i}.jpg", CAT, "image/jpeg")) for i in range(3)]
    response = server.post("/inference", files=files)
    line = access_line(server.log(), response.headers["X-Request-ID"])
    assert (line["image_bytes"], line["images"]) == (3 * len(CAT), 3)
    assert line["batch_size"] >= 3  # the three went to the model together


@pytest.fixture()
def unconfigured_access_log() -> Iterator[None]:
    yield
    access_log.configure(access_log.OFF)


def test_access_log_to_a_file_or_off(tmp_path: Path, unconfigured_access_log: None) -> None:
    client = create_app(Settings()).test_client()  # the model never loads: the answers are 503s
    destination = tmp_path / "access.log"
    access_log.configure(str(destination))
    client.get("/ready", headers={"X-Request-ID": "to-the-file"})
    access_log.configure(access_log.OFF)
    client.get("/ready", headers={"X-Request-ID": "not-logged"})
    lines = [json.loads(line) for line in destination.read_text().splitlines()]
    assert [(line["request_id"], line["route"], line["status"]) for line in lines] == [("to-the-file", "/ready", 503)]


def test_request_ids() -> None:
    assert access_log.request_id_from("a1-B2.c3_:@/+=") == "a1-B2.c3_:@/+="
    assert access_log.request_id_from(None) != access_log.request_id_from(None)
    for unusable in ("", "a b", "x" * 129, "line\nbreak", "quote\""):
        assert GENERATED_ID.fullmatch(access_log.request_id_from(unusable))
