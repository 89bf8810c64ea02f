"""End to end: the seed's routes on the real server on 127.0.0.1, where the process matters: liveness and
readiness, paths as they arrive on the wire, files of the folder that are not images, and parity with
torchvision. Request validation is tested in-process (tests/unit/test_routes_inprocess.py)."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from support.answers import assert_error, probability_row
from support.server_process import ServerProcess



def raw_get(server: ServerProcess, raw_path: str) -> tuple[int, dict]:
    """GET with the path sent byte for byte, as an attacker would (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", raw_path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, json.loads(body)


def test_liveness(server: ServerProcess) -> None:
    response = server.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["model"] == "densenet121" and body["ready"] is True


def test_ready(server: ServerProcess) -> None:
    response = server.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_subfolders_and_unicode_names(server: ServerProcess) -> None:
    # Percent-encoded by the client, decoded by gunicorn: the copy of cat.jpg answers exactly like it.
    nested = server.get("/inference/nested/deeper/cat copy é.jpg")
    assert nested.status_code == 200, nested.text
    assert nested.json() == server.get("/inference/cat.jpg").json()


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
    message = assert_error(server.get(f"/inference/{special_files}/huge.jpg"), 413, "image_too_large")
    assert "--max-body-bytes" in message


def test_parity_with_torchvision_reference(
    server: ServerProcess, labelled_reference: np.ndarray, photos: list[Path]
) -> None:
    """Every labelled photo: the server's 1000 probabilities equal torchvision's pipeline within 1e-4."""
    expected = labelled_reference
    worst = 0.0
    for photo, reference in zip(photos, expected):
        body = server.get(f"/inference/{photo.name}?top_k=1000").json()
        served = probability_row(body)
        worst = max(worst, float(np.abs(served - reference).max()))
        assert body["index"] == int(reference.argmax()), photo.name
    assert worst < PARITY_TOLERANCE
    # The fixture is discriminative: peaked probabilities that differ from photo to photo.
    assert expected.max(axis=1).mean() > 0.1
    assert len(set(expected.argmax(axis=1))) > 1
