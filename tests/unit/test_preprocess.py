"""Preprocessing with Pillow + NumPy equals torchvision's reference transform, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.reference import reference_transform

from densenet_server.decoding import decode_image
from densenet_server.model_catalog import torchvision_record
from densenet_server.model_record import DENSENET121, Preprocessing
from densenet_server.preprocess import MAX_FULL_RESIZE_PIXELS, normalize, preprocess, resized_size

REFERENCE = reference_transform()
PREPROCESSING = DENSENET121.preprocessing
LIMIT = 40_000_000
# Preprocessings unlike DenseNet's: resize and crop sizes of their own, bicubic resampling.
OTHER_ARCHITECTURES = ["resnet50", "efficientnet_b0", "efficientnet_b1"]


def reference(image: Image.Image, architecture: str = "densenet121") -> np.ndarray:
    return (REFERENCE if architecture == "densenet121" else reference_transform(architecture))(image).numpy()


def test_densenet121s_preprocessing_is_torchvisions() -> None:
    assert [PREPROCESSING.resize_size] == REFERENCE.resize_size and [PREPROCESSING.crop_size] == REFERENCE.crop_size
    assert PREPROCESSING.mean == tuple(REFERENCE.mean) and PREPROCESSING.std == tuple(REFERENCE.std)
    assert PREPROCESSING.interpolation == REFERENCE.interpolation.value == "bilinear" and REFERENCE.antialias


def test_bit_identical_on_every_photo(photos: list[Path]) -> None:
    for photo in photos:
        image = decode_image(photo.read_bytes(), LIMIT)
        ours = preprocess(image, PREPROCESSING)
        assert ours.shape == PREPROCESSING.input_shape == (3, 224, 224) and ours.dtype == np.float32
        assert np.array_equal(ours, reference(image)), photo.name


@pytest.mark.parametrize("architecture", OTHER_ARCHITECTURES)
def test_bit_identical_for_other_architectures(architecture: str, photos: list[Path]) -> None:
    preprocessing = torchvision_record(architecture).preprocessing
    for photo in photos[:8]:
        image = decode_image(photo.read_bytes(), LIMIT)
        ours = preprocess(image, preprocessing)
        assert ours.shape == preprocessing.input_shape
        assert np.array_equal(ours, reference(image, architecture)), photo.name


@pytest.mark.parametrize(
    "size",
    # Already 256 on the short side (no resize), exactly the crop, odd offsets (round half to even),
    # upscaling from tiny, portrait and landscape, a 12-MP photo.
    [(256, 256), (256, 300), (224, 224), (255, 255), (257, 301), (301, 257), (1, 1), (3, 7), (225, 1000), (4000, 3000)],
)
def test_bit_identical_on_every_shape(size: tuple[int, int]) -> None:
    image = random_image(size)
    assert np.array_equal(preprocess(image, PREPROCESSING), reference(image))


# efficientnet_b1's 255 -> 240 has odd crop offsets of its own; bicubic overshoots, so it clips.
@pytest.mark.parametrize("size", [(255, 255), (256, 301), (241, 1000), (1, 1), (4000, 3000)])
@pytest.mark.parametrize("architecture", OTHER_ARCHITECTURES)
def test_bit_identical_on_every_shape_for_other_architectures(size: tuple[int, int], architecture: str) -> None:
    image = random_image(size)
    preprocessing = torchvision_record(architecture).preprocessing
    assert np.array_equal(preprocess(image, preprocessing), reference(image, architecture))


def random_image(size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_resized_size_truncates_the_long_side_like_torchvision() -> None:
    assert resized_size(500, 375, 256) == (341, 256)
    assert resized_size(375, 500, 256) == (256, 341)
    assert resized_size(3000, 4000, 256) == (256, 341)
    assert resized_size(3000, 4000, 232) == (232, 309)  # resnet50's short side


def test_a_preprocessing_is_used_whole() -> None:
    """Each field of the record changes the result: none is replaced by a constant."""
    image = random_image((300, 400))
    base = preprocess(image, PREPROCESSING)
    for changed in (
        Preprocessing(232, 224, "bilinear", PREPROCESSING.mean, PREPROCESSING.std),
        Preprocessing(256, 224, "bicubic", PREPROCESSING.mean, PREPROCESSING.std),
        Preprocessing(256, 224, "bilinear", (0.5, 0.5, 0.5), PREPROCESSING.std),
        Preprocessing(256, 224, "bilinear", PREPROCESSING.mean, (0.5, 0.5, 0.5)),
    ):
        assert not np.array_equal(preprocess(image, changed), base), changed
    assert preprocess(image, Preprocessing(256, 240, "bilinear", PREPROCESSING.mean, PREPROCESSING.std)).shape == (3, 240, 240)


def test_extreme_aspect_ratios_resize_only_what_the_crop_keeps() -> None:
    """1x5000 would become 256x1280000 (a gigabyte) before the crop; the result stays within 1/255."""
    pixels = np.random.default_rng(1).integers(0, 256, (5000, 2, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    width, height = resized_size(*image.size, PREPROCESSING.resize_size)
    assert width * height > MAX_FULL_RESIZE_PIXELS
    std = np.array(PREPROCESSING.std, dtype=np.float32).reshape(3, 1, 1)
    difference = np.abs(preprocess(image, PREPROCESSING) - reference(image)) * std  # back to [0, 1] pixel units
    assert difference.max() <= 1 / 255 + 1e-6


def test_torch_is_not_needed() -> None:
    code = (
        "import sys, io; from PIL import Image; "
        "from densenet_server.decoding import decode_image; from densenet_server.preprocess import preprocess; "
        "from densenet_server.model_record import DENSENET121; "
        f"data = open({str(Path(__file__).parents[2] / 'images' / 'cat.jpg')!r}, 'rb').read(); "
        "preprocess(decode_image(data, 10**8), DENSENET121.preprocessing); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)



def test_a_batch_is_normalised_as_its_images_one_at_a_time_into_one_contiguous_array() -> None:
    crops = np.random.default_rng(3).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    pixels = normalize(crops, DENSENET121.preprocessing)
    assert pixels.dtype == np.float32 and pixels.shape == (3, 3, 224, 224) and pixels.flags["C_CONTIGUOUS"]
    for crop_pixels, one in zip(pixels, crops):
        assert np.array_equal(crop_pixels, normalize(one, DENSENET121.preprocessing))
    # The reference formula, element by element in float32.
    mean = np.array(DENSENET121.preprocessing.mean, np.float32).reshape(3, 1, 1)
    std = np.array(DENSENET121.preprocessing.std, np.float32).reshape(3, 1, 1)
    assert np.array_equal(pixels, (np.moveaxis(crops, -1, -3).astype(np.float32) / np.float32(255) - mean) / std)
