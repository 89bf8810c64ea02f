"""Parity on real-world image kinds: each in-process path answers what torchvision's pipeline answers on
the documented decoding (tests/support/image_kinds.py), for EXIF-rotated, CMYK, YCCK, palette, alpha,
16-bit, progressive, WebP, GIF, extreme-shape, 12-MP and tiny images made from real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from PIL import Image
from support.image_kinds import Kind, build_kinds, reference_rgb, torchvision_input, torchvision_probabilities
from torch import nn

from densenet_server.config import Settings
from densenet_server.decoding import decode_image
from densenet_server.local_service import loaded_service, probabilities_of
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import preprocess

# The preprocessing is bit-identical to torchvision's, so the inputs are equal; what PARITY_TOLERANCE
# allows for is the backends' float32 arithmetic (batch size, kernels chosen by the CPU).
LIMIT = Settings().max_image_pixels


@pytest.fixture(scope="module")
def kinds(photos: list[Path]) -> list[Kind]:
    return build_kinds(photos)


@pytest.fixture(scope="module")
def reference_images(kinds: list[Kind]) -> list[Image.Image]:
    return [reference_rgb(kind.data) for kind in kinds]


@pytest.fixture(scope="module")
def expected(reference_model: nn.Module, reference_images: list[Image.Image]) -> np.ndarray:
    return torchvision_probabilities(reference_model, reference_images)


def test_decoded_pixels_and_model_input_equal_the_reference(kinds: list[Kind], reference_images: list[Image.Image]) -> None:
    """The first place a kind can go wrong, with its name: the decoded image, then the tensor."""
    for kind, reference in zip(kinds, reference_images):
        decoded = decode_image(kind.data, LIMIT)
        assert decoded.mode == "RGB" and decoded.size == reference.size, kind.name
        assert np.array_equal(np.asarray(decoded), np.asarray(reference)), kind.name
        assert np.array_equal(preprocess(decoded, DENSENET121.preprocessing), torchvision_input(reference)), kind.name


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_fp32_backends_answer_like_torchvision_on_every_kind(
    checkpoint_path: Path, kinds: list[Kind], expected: np.ndarray, backend: str
) -> None:
    # Settings' defaults otherwise (--jpeg-draft off among them): the path a deployment gets.
    with loaded_service(Settings(weights=checkpoint_path, backend=backend, threads=2)) as service:
        assert (service.info.backend, service.info.precision) == (backend, "fp32")
        served = probabilities_of(service, [kind.data for kind in kinds])
    worst = np.abs(served - expected).max(axis=1)
    off = [f"{kind.name}: {diff:.2e}" for kind, diff in zip(kinds, worst) if diff >= PARITY_TOLERANCE]
    assert not off, off
    wrong_top1 = [kind.name for kind, a, b in zip(kinds, served, expected) if a.argmax() != b.argmax()]
    assert not wrong_top1, wrong_top1
