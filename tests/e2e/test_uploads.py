"""End to end: POST /inference's limits on the wire, on a real server with small limits (gunicorn reads
the body; a chunked body has no Content-Length to refuse it by). Uploads themselves (raw bodies,
multipart, errors) are tested in-process (tests/unit/test_routes_inprocess.py), and through the real
server by the hostile corpus (test_hostile_inputs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.answers import assert_error
from support.paths import CAT_JPEG
from support.server_process import ServerProcess

CAT = CAT_JPEG.read_bytes()
BODY_LIMIT = 200_000
IMAGES_LIMIT = 3


@pytest.fixture(scope="module")
def limited_server(checkpoint_path: Path, images_dir: Path) -> Iterator[ServerProcess]:
    """A server with small limits, so that oversize requests are cheap to send."""
    args = ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--threads", "1",
            "--max-body-bytes", str(BODY_LIMIT), "--max-images-per-request", str(IMAGES_LIMIT)]
    with ServerProcess.start(args) as process:
        yield process


def test_oversize_body_is_413_naming_the_limit_and_logged(limited_server: ServerProcess) -> None:
    big = b"\xff" * (BODY_LIMIT + 1)
    for kwargs in (
        {"data": big, "headers": {"Content-Type": "image/jpeg"}},
        {"files": {"file": ("big.jpg", big, "image/jpeg")}},
    ):
        message = assert_error(limited_server.post("/inference", **kwargs), 413, "payload_too_large")
        assert str(BODY_LIMIT) in message and "--max-body-bytes" in message
    assert f"the limit is {BODY_LIMIT} bytes" in limited_server.log()


def test_oversize_chunked_body_without_content_length_is_413(limited_server: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"\xff" * (BODY_LIMIT // 2)

    response = requests.post(limited_server.url("/inference"), data=chunks(),
                             headers={"Content-Type": "image/jpeg"}, timeout=60)
    message = assert_error(response, 413, "payload_too_large")
    assert str(BODY_LIMIT) in message


def test_too_many_images_is_400(limited_server: ServerProcess) -> None:
    files = [("file", (f"cat{i}.jpg", CAT, "image/jpeg")) for i in range(IMAGES_LIMIT + 1)]
    message = assert_error(limited_server.post("/inference", files=files), 400, "too_many_images")
    assert f"the request holds {IMAGES_LIMIT + 1} images; the limit is {IMAGES_LIMIT} per request" in message
    files = files[:IMAGES_LIMIT]
    response = limited_server.post("/inference", files=files)
    assert response.status_code == 200 and len(response.json()["results"]) == IMAGES_LIMIT
