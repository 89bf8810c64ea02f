"""Preprocessing with Pillow + NumPy equals torchvision's reference transform, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.models import DenseNet121_Weights

from densenet_server.decoding import decode_image
from densenet_server.preprocess import (
    CROP_SIZE,
    INPUT_SHAPE,
    MAX_FULL_RESIZE_PIXELS,
    MEAN,
    RESIZE_SHORT_SIDE,
    STD,
    preprocess,
    resized_size,
)

REFERENCE = DenseNet121_Weights.IMAGENET1K_V1.transforms()
LIMIT = 40_000_000


def reference(image: Image.Image) -> np.ndarray:
    return REFERENCE(image).numpy()


def test_constants_are_torchvisions() -> None:
    assert [RESIZE_SHORT_SIDE] == REFERENCE.resize_size and [CROP_SIZE] == REFERENCE.crop_size
    assert np.allclose(MEAN.ravel(), REFERENCE.mean) and np.allclose(STD.ravel(), REFERENCE.std)
    assert REFERENCE.interpolation.value == "bilinear" and REFERENCE.antialias


def test_bit_identical_on_every_photo(photos: list[Path]) -> None:
    for photo in photos:
        image = decode_image(photo.read_bytes(), LIMIT)
        ours = preprocess(image)
        assert ours.shape == INPUT_SHAPE and ours.dtype == np.float32
        assert np.array_equal(ours, reference(image)), photo.name


@pytest.mark.parametrize(
    "size",
    # Already 256 on the short side (no resize), exactly the crop, odd offsets (round half to even),
    # upscaling from tiny, portrait and landscape, a 12-MP photo.
    [(256, 256), (256, 300), (224, 224), (255, 255), (257, 301), (301, 257), (1, 1), (3, 7), (225, 1000), (4000, 3000)],
)
def test_bit_identical_on_every_shape(size: tuple[int, int]) -> None:
    pixels = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    assert np.array_equal(preprocess(image), reference(image))


def test_resized_size_truncates_the_long_side_like_torchvision() -> None:
    assert resized_size(500, 375) == (341, 256)
    assert resized_size(375, 500) == (256, 341)
    assert resized_size(3000, 4000) == (256, 341)


def test_extreme_aspect_ratios_resize_only_what_the_crop_keeps() -> None:
    """1x5000 would become 256x1280000 (a gigabyte) before the crop; the result stays within 1/255."""
    pixels = np.random.default_rng(1).integers(0, 256, (5000, 2, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    width, height = resized_size(*image.size)
    assert width * height > MAX_FULL_RESIZE_PIXELS
    difference = np.abs(preprocess(image) - reference(image)) * STD  # back to [0, 1] pixel units
    assert difference.max() <= 1 / 255 + 1e-6


def test_torch_is_not_needed() -> None:
    code = (
        "import sys, io; from PIL import Image; "
        "from densenet_server.decoding import decode_image; from densenet_server.preprocess import preprocess; "
        f"data = open({str(Path(__file__).parents[2] / 'images' / 'cat.jpg')!r}, 'rb').read(); "
        "preprocess(decode_image(data, 10**8)); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

