"""End to end: POST /inference with multipart uploads and raw bodies, on the real server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from support.server_process import ServerProcess

from densenet_server.app import create_app
from densenet_server.config import Settings

REPO_IMAGES = Path(__file__).resolve().parents[2] / "images"
CAT = (REPO_IMAGES / "cat.jpg").read_bytes()
COFFEE = (REPO_IMAGES / "coffee.jpg").read_bytes()
BODY_LIMIT = 200_000
IMAGES_LIMIT = 3


def assert_same_answer(actual: dict, expected: dict) -> None:
    """Equal answers; probabilities within float32 noise (a batch of several rows may round differently)."""
    assert {k: v for k, v in actual.items() if k not in ("probability", "top_k")} == {
        k: v for k, v in expected.items() if k not in ("probability", "top_k")
    }
    assert [e["index"] for e in actual["top_k"]] == [e["index"] for e in expected["top_k"]]
    assert [e["label"] for e in actual["top_k"]] == [e["label"] for e in expected["top_k"]]
    for got, want in zip(actual["top_k"], expected["top_k"]):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-5)
    assert actual["probability"] == pytest.approx(expected["probability"], abs=1e-5)


def assert_error(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return str(error["message"])


@pytest.fixture(scope="module")
def limited_server(checkpoint_path: Path, images_dir: Path) -> Iterator[ServerProcess]:
    """A server with small limits, so that oversize requests are cheap to send."""
    args = ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--threads", "1",
            "--max-body-bytes", str(BODY_LIMIT), "--max-images-per-request", str(IMAGES_LIMIT)]
    with ServerProcess.start(args) as process:
        yield process


def test_raw_image_body_answers_like_get(server: ServerProcess) -> None:
    expected = server.get("/inference/cat.jpg").json()
    for content_type in ("image/jpeg", "image/png", "application/octet-stream"):  # the type is a hint only
        response = server.post("/inference", data=CAT, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
        assert_same_answer(response.json(), expected)


def test_one_multipart_file_answers_like_get(server: ServerProcess) -> None:
    expected = server.get("/inference/coffee.jpg?top_k=3").json()
    response = server.post("/inference?top_k=3", files={"file": ("coffee.jpg", COFFEE, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert_same_answer(response.json(), expected)
    assert len(response.json()["top_k"]) == 3


def test_several_files_with_one_broken_answer_each_in_order(server: ServerProcess) -> None:
    png = io.BytesIO()
    Image.open(io.BytesIO(CAT)).save(png, "PNG")
    files = [
        ("file", ("cat.jpg", CAT, "image/jpeg")),
        ("file", ("broken.jpg", b"this is not a JPEG", "image/jpeg")),
        ("file", ("coffee.jpg", COFFEE, "image/jpeg")),
        ("file", ("truncated.jpg", CAT[:2000], "image/jpeg")),
        ("file", ("cat.png", png.getvalue(), "image/png")),
    ]
    response = server.post("/inference?top_k=2", files=files)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["cat.jpg", "broken.jpg", "coffee.jpg", "truncated.jpg", "cat.png"]
    cat = server.get("/inference/cat.jpg?top_k=2").json()
    coffee = server.get("/inference/coffee.jpg?top_k=2").json()
    assert_same_answer(results[0], {"filename": "cat.jpg", **cat})
    assert_same_answer(results[2], {"filename": "coffee.jpg", **coffee})
    for broken in (results[1], results[3]):
        assert broken["status"] == 400
        assert broken["error"]["code"] == "invalid_image"
        assert broken["error"]["message"]
        assert "class" not in broken
    assert results[4]["class"] and len(results[4]["top_k"]) == 2


def test_multi_file_request_counts_each_image_in_metrics(server: ServerProcess) -> None:
    def classified() -> float:
        for line in server.get("/metrics").text.splitlines():
            if line.startswith("densenet_images_classified_total "):
                return float(line.split()[1])
        raise AssertionError("no densenet_images_classified_total")

    before = classified()
    files = [("file", (f"cat{i}.jpg", CAT, "image/jpeg")) for i in range(3)]
    assert server.post("/inference", files=files).status_code == 200
    assert classified() - before == 3


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": CAT, "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"json": {"file": "cat.jpg"}}, 415, "unsupported_media_type"),
        ({"data": CAT}, 415, "unsupported_media_type"),  # no Content-Type at all
        ({"data": b"", "headers": {"Content-Type": "image/jpeg"}}, 400, "missing_file"),
        ({"files": {"other": ("cat.jpg", CAT, "image/jpeg")}}, 400, "missing_file"),
        ({"files": {"file": ("", b"", "application/octet-stream")}}, 400, "missing_file"),
        ({"data": b"not an image", "headers": {"Content-Type": "image/jpeg"}}, 400, "invalid_image"),
        ({"files": {"file": ("x.jpg", b"", "image/jpeg")}}, 400, "invalid_image"),
        ({"files": {"file": ("cat.jpg", CAT, "image/jpeg")}, "params": {"top_k": "0"}}, 400, "invalid_argument"),
    ],
)
def test_upload_errors(server: ServerProcess, kwargs: dict, status: int, code: str) -> None:
    assert_error(server.post("/inference", **kwargs), status, code)


def test_unsupported_image_format_is_415(server: ServerProcess) -> None:
    ico = io.BytesIO()
    Image.new("RGB", (16, 16)).save(ico, "ICO")
    assert_error(server.post("/inference", data=ico.getvalue(), headers={"Content-Type": "image/x-icon"}),
                 415, "unsupported_image_format")


def test_get_is_not_allowed_on_the_upload_route(server: ServerProcess) -> None:
    assert_error(server.get("/inference"), 405, "method_not_allowed")


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
    assert str(IMAGES_LIMIT) in message
    files = files[:IMAGES_LIMIT]
    response = limited_server.post("/inference", files=files)
    assert response.status_code == 200 and len(response.json()["results"]) == IMAGES_LIMIT


def test_uploads_before_the_model_is_loaded_are_503() -> None:
    client = create_app(Settings()).test_client()  # the service is never started
    response = client.post("/inference", data=CAT, content_type="image/jpeg")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "not_ready"
    assert response.headers["Retry-After"] == "1"


def test_liveness_links_the_web_page(server: ServerProcess) -> None:
    body = server.get("/").json()
    assert body["status"] == "ok"
    assert body["ui"] == "/ui"
    assert server.get(body["ui"]).status_code == 200
