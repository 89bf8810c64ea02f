"""End to end: the real server on 127.0.0.1, the seed's routes and every error they can give."""

from __future__ import annotations

import http.client
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


@pytest.mark.parametrize(
    "raw_path",
    [
        "/inference/../pyproject.toml",
        "/inference/%2e%2e/secret.jpg",
        "/inference/%2E%2E%2Fsecret.jpg",
        "/inference/nested/../../secret.jpg",
        "/inference//etc/passwd",
        "/inference/%2Fetc%2Fpasswd",
        "/inference/..%5Csecret.jpg",
        "/inference/cat.jpg%00.png",
        "/inference/link-out.jpg",
        "/inference/dir-link-out/secret.jpg",
        "/inference/" + "a" * 3000 + ".jpg",
    ],
)
def test_path_escapes_never_serve_outside_files(server: ServerProcess, raw_path: str) -> None:
    status, body = raw_get(server, raw_path)
    assert status in (400, 404), body
    assert set(body) == {"error"}
    assert body["error"]["code"] in {"invalid_path", "image_not_found", "not_found"}


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
