"""Parity over HTTP: the real server, started with its defaults, answers uploads of real-world image kinds
as torchvision's pipeline does on the documented decoding (tests/support/image_kinds.py); and it decodes a
12-MP JPEG in full, so a flipped --jpeg-draft default shows up in its answer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from PIL import Image
from support.image_kinds import SEED, Kind, build_kinds, reference_rgb, torchvision_probabilities
from support.server_process import ServerProcess
from torch import nn

from densenet_server.model_record import DENSENET121

NUM_CLASSES = DENSENET121.num_classes

# A representative subset (the in-process tests take every kind): each format's EXIF carrier, CMYK and
# YCCK, transparency, 16 bits in both containers, the lossy codecs, the extreme shapes, 12 MP, one pixel.
HTTP_KINDS = [
    "exif-6.jpg", "exif-7.png", "exif-5.tiff", "exif-6.webp", "cmyk.jpg", "ycck.jpg", "lab.tiff",
    "palette-transparent.png", "palette.gif", "rgba.webp", "la.png", "grey-16-bit.png", "grey-16-bit.tiff",
    "rgb-48-bit.png", "progressive.jpg", "lossy.webp", "wide.jpg", "tall.png", "12-mp.jpg", "tiny-1x1.png",
]
FILES_PER_REQUEST = 5  # several parts per request, so the multipart path and batching are part of it


@pytest.fixture(scope="module")
def kinds(photos: list[Path]) -> list[Kind]:
    return build_kinds(photos, HTTP_KINDS, seed=SEED + 1)  # other photos than the in-process tests'


@pytest.fixture(scope="module")
def expected(reference_model: nn.Module, kinds: list[Kind]) -> np.ndarray:
    return torchvision_probabilities(reference_model, [reference_rgb(kind.data) for kind in kinds])


def all_probabilities(answer: dict) -> np.ndarray:
    """The 1000 probabilities of one answer, from its top_k list (asked for with top_k=1000)."""
    assert (answer["backend"], answer["precision"]) == ("onnxruntime", "fp32")
    assert sorted(entry["index"] for entry in answer["top_k"]) == list(range(NUM_CLASSES))
    row = np.zeros(NUM_CLASSES)
    for entry in answer["top_k"]:
        row[entry["index"]] = entry["probability"]
    return row


def uploaded(server: ServerProcess, kinds: list[Kind]) -> np.ndarray:
    rows = []
    for start in range(0, len(kinds), FILES_PER_REQUEST):
        group = kinds[start : start + FILES_PER_REQUEST]
        files = [("file", (kind.name, kind.data, "application/octet-stream")) for kind in group]
        response = server.post("/inference", params={"top_k": NUM_CLASSES}, files=files)
        assert response.status_code == 200, response.text
        if len(group) == 1:  # one part: the plain answer, like GET /inference/<file>
            results = [response.json()]
        else:
            results = response.json()["results"]
            assert [result["filename"] for result in results] == [kind.name for kind in group]
        rows.extend(all_probabilities(result) for result in results)
    return np.array(rows)


def test_uploads_answer_like_torchvision_on_every_kind(server: ServerProcess, kinds: list[Kind], expected: np.ndarray) -> None:
    served = uploaded(server, kinds)
    worst = np.abs(served - expected).max(axis=1)
    off = [f"{kind.name}: {diff:.2e}" for kind, diff in zip(kinds, worst) if diff >= PARITY_TOLERANCE]
    assert not off, off
    assert [kind.name for kind, a, b in zip(kinds, served, expected) if a.argmax() != b.argmax()] == []


def drafted_reference(reference_model: nn.Module, data: bytes) -> np.ndarray:
    """What a server with --jpeg-draft would answer: the JPEG decoded at 1/8 scale (Pillow's draft())."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image.width // 8, image.height // 8))
        drafted = image.convert("RGB")
    assert drafted.size == (500, 375)
    return torchvision_probabilities(reference_model, [drafted])[0]


def test_default_server_decodes_large_jpegs_in_full(
    server: ServerProcess, kinds: list[Kind], expected: np.ndarray, reference_model: nn.Module
) -> None:
    """--jpeg-draft is off unless asked for: the 12-MP JPEG's answer is the exact decoding's, and that is
    told apart from the drafted decoding's by far more than the tolerance."""
    number = next(i for i, kind in enumerate(kinds) if kind.name.startswith("12-mp-"))
    served = uploaded(server, [kinds[number]])[0]
    assert np.abs(served - expected[number]).max() < PARITY_TOLERANCE
    assert np.abs(drafted_reference(reference_model, kinds[number].data) - expected[number]).max() > 10 * PARITY_TOLERANCE
