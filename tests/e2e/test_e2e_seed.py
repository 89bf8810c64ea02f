"""End to end: the real server on 127.0.0.1, the seed's routes and every error they can give."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import numpy as np
import pytest
import requests
from support.reference import reference_probabilities
from support.server_process import ServerProcess
from torch import nn

PARITY_TOLERANCE = 1e-4


def raw_get(server: ServerProcess, raw_path: str) -> tuple[int, dict]:
    """GET with the path sent byte for byte, as an attacker would (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", raw_path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    import json

    return response.status, json.loads(body)


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


def test_liveness(server: ServerProcess) -> None:
    response = server.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["model"] == "densenet121" and body["ready"] is True


def test_ready(server: ServerProcess) -> None:
    response = server.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_inference_answer_shape(server: ServerProcess, checkpoint_path: Path) -> None:
    response = server.get("/inference/cat.jpg")
    assert response.status_code == 200
    body = response.json()
    assert len(body["top_k"]) == 5
    assert body["class"] == body["top_k"][0]["label"]
    assert body["index"] == body["top_k"][0]["index"]
    assert body["probability"] == body["top_k"][0]["probability"]
    probabilities = [entry["probability"] for entry in body["top_k"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert body["model"] == "densenet121"
    # Random test weights must never pass for the published ones.
    assert body["weights_published"] is False
    assert checkpoint_path.name in body["weights"]
    assert "not torchvision's published" in body["warning"]


@pytest.mark.parametrize("k", [1, 3, 1000])
def test_top_k(server: ServerProcess, k: int) -> None:
    body = server.get(f"/inference/cat.jpg?top_k={k}").json()
    assert len(body["top_k"]) == k
    assert len({entry["index"] for entry in body["top_k"]}) == k
    if k == 1000:
        assert sum(entry["probability"] for entry in body["top_k"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("k", ["0", "1001", "-1", "five", "2.5", ""])
def test_top_k_out_of_range(server: ServerProcess, k: str) -> None:
    assert_error(server.get(f"/inference/cat.jpg?top_k={k}"), 400, "invalid_argument")


def test_subfolders_and_unicode_names(server: ServerProcess) -> None:
    nested = server.get("/inference/nested/deeper/cat copy é.jpg").json()
    direct = server.get("/inference/cat.jpg").json()
    assert nested["top_k"] == direct["top_k"]


def test_link_inside_the_folder_is_followed(server: ServerProcess) -> None:
    assert server.get("/inference/link-in.jpg").status_code == 200


def test_missing_image_says_where_to_put_it(server: ServerProcess) -> None:
    error = assert_error(server.get("/inference/dog.jpg"), 404, "image_not_found")
    assert "dog.jpg" in error["message"]
    assert "images folder" in error["message"]


@pytest.mark.parametrize(
    ("name", "code"), [("not-an-image.jpg", "invalid_image"), ("empty.png", "invalid_image"), ("truncated.jpg", "invalid_image")]
)
def test_broken_images(server: ServerProcess, name: str, code: str) -> None:
    assert_error(server.get(f"/inference/{name}"), 400, code)


@pytest.fixture(scope="module")
def special_files(images_dir: Path) -> str:
    """Files that are no images to read: a FIFO (reading it would block), a link to a device, and a sparse
    file larger than --max-body-bytes (reading it whole would fill the memory)."""
    folder = images_dir / "special"
    folder.mkdir(exist_ok=True)
    os.mkfifo(folder / "fifo.jpg")
    (folder / "dev-zero.jpg").symlink_to("/dev/zero")
    with (folder / "huge.jpg").open("wb") as stream:
        stream.truncate(21 * 1024 * 1024)
    return folder.name


@pytest.mark.parametrize(
    ("raw_path", "status", "code"),
    [
        ("/inference/../pyproject.toml", 400, "invalid_path"),
        ("/inference/..", 400, "invalid_path"),
        ("/inference/%2e%2e/secret.jpg", 400, "invalid_path"),
        ("/inference/%2E%2E%2Fsecret.jpg", 400, "invalid_path"),
        ("/inference/nested/../../secret.jpg", 400, "invalid_path"),
        ("/inference/a/..%2f..%2fsecret.jpg", 400, "invalid_path"),
        ("/inference/..%5Csecret.jpg", 400, "invalid_path"),
        ("/inference/C:%5Cwindows%5Cwin.ini", 400, "invalid_path"),
        ("/inference/cat.jpg%00.png", 400, "invalid_path"),
        ("/inference/" + "a" * 3000 + ".jpg", 400, "invalid_path"),
        # An absolute path never matches the route (its name would start with "/").
        ("/inference//etc/passwd", 404, "not_found"),
        ("/inference/%2Fetc%2Fpasswd", 404, "not_found"),
        # Decoded once only: "%2e%2e" stays a literal (and absent) name.
        ("/inference/%252e%252e/secret.jpg", 404, "image_not_found"),
        ("/inference/%ff%fe.jpg", 404, "image_not_found"),
        ("/inference/" + "b" * 300 + ".jpg", 404, "image_not_found"),  # over the file system's name limit
        ("/inference/.", 404, "image_not_found"),
        ("/inference/link-out.jpg", 404, "image_not_found"),
        ("/inference/dir-link-out/secret.jpg", 404, "image_not_found"),
        ("/inference/special/fifo.jpg", 404, "image_not_found"),
        ("/inference/special/dev-zero.jpg", 404, "image_not_found"),
    ],
)
def test_path_tricks_never_serve_outside_files(
    server: ServerProcess, special_files: str, raw_path: str, status: int, code: str
) -> None:
    answer_status, body = raw_get(server, raw_path)
    assert (answer_status, set(body), body["error"]["code"]) == (status, {"error"}, code), body
    assert body["error"]["message"]


def test_a_file_over_the_body_limit_is_not_read(server: ServerProcess, special_files: str) -> None:
    error = assert_error(server.get(f"/inference/{special_files}/huge.jpg"), 413, "image_too_large")
    assert "--max-body-bytes" in error["message"]


def test_unknown_route_and_method_are_json(server: ServerProcess) -> None:
    assert_error(server.get("/no-such-route"), 404, "not_found")
    assert_error(requests.delete(server.url("/inference/cat.jpg"), timeout=10), 405, "method_not_allowed")


def test_parity_with_torchvision_reference(
    server: ServerProcess, reference_model: nn.Module, photos: list[Path]
) -> None:
    """Every labelled photo: the server's 1000 probabilities equal torchvision's pipeline within 1e-4."""
    expected = reference_probabilities(reference_model, photos)
    worst = 0.0
    for photo, reference in zip(photos, expected):
        body = server.get(f"/inference/{photo.name}?top_k=1000").json()
        served = np.zeros(1000)
        for entry in body["top_k"]:
            served[entry["index"]] = entry["probability"]
        worst = max(worst, float(np.abs(served - reference).max()))
        assert body["index"] == int(reference.argmax()), photo.name
    assert worst < PARITY_TOLERANCE
    # The fixture is discriminative: peaked probabilities that differ from photo to photo.
    assert expected.max(axis=1).mean() > 0.1
    assert len(set(expected.argmax(axis=1))) > 1
