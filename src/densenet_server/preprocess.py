"""RGB image -> the normalised [3, 224, 224] float32 array the model takes, with Pillow and NumPy only.

It reproduces torchvision's reference for these weights, ``DenseNet121_Weights.IMAGENET1K_V1.transforms()``
on a PIL image, step for step, so that the server needs no PyTorch: resize the short side to 256 with
Pillow's bilinear filter (which is what torchvision calls for PIL images, antialiased), centre-crop 224
with torchvision's rounding, scale to [0, 1] and normalise with the ImageNet mean and standard deviation
in float32. tests/test_preprocess.py shows the result is bit-identical to torchvision's on real photos.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
INPUT_SHAPE = (3, CROP_SIZE, CROP_SIZE)
# A very long thin image (say 1x5000) would be resized to 256x1280000 before the crop throws almost all of
# it away: beyond this many resized pixels only the part that survives the crop is resized.
MAX_FULL_RESIZE_PIXELS = 16_000_000
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def resized_size(width: int, height: int, short_side: int = RESIZE_SHORT_SIDE) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``short_side``; the long side is truncated, as in
    torchvision's _compute_resized_output_size."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def _centre_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    # torchvision rounds the offsets with Python's round() (half to even); so must we.
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


CROP_SHAPE = (CROP_SIZE, CROP_SIZE, 3)


def preprocess(image: Image.Image) -> np.ndarray:
    """An RGB PIL image -> float32 [3, 224, 224], equal to torchvision's reference transform."""
    return normalize(crop(image))


def crop(image: Image.Image) -> np.ndarray:
    """The resized and centre-cropped pixels, uint8 [224, 224, 3]: what travels from an HTTP front to the
    engine process (a quarter of the float32 size); normalize() finishes the reference transform."""
    target = resized_size(*image.size)
    crop_box = _centre_crop_box(*target, CROP_SIZE)
    if target == image.size:
        cropped = image.crop(crop_box)
    elif target[0] * target[1] <= MAX_FULL_RESIZE_PIXELS:
        cropped = image.resize(target, Image.Resampling.BILINEAR).crop(crop_box)
    else:
        cropped = _resize_crop_only(image, target, crop_box)
    # After the resize the short side is 256 >= 224, so the crop never needs torchvision's padding.
    return np.asarray(cropped, dtype=np.uint8)


def normalize(crops: np.ndarray) -> np.ndarray:
    """uint8 crops [..., 224, 224, 3] -> normalised float32 [..., 3, 224, 224]. Element by element, so a
    batch gives the same bits as its images one at a time."""
    scaled = np.moveaxis(crops, -1, -3).astype(np.float32) / np.float32(255)
    return (scaled - MEAN) / STD


def _resize_crop_only(image: Image.Image, target: tuple[int, int], crop_box: tuple[int, int, int, int]) -> Image.Image:
    """The crop of the resized image, resizing only the source region it comes from (same filter scale;
    pixels may differ from the full resize by rounding of the filter positions)."""
    scale_x = image.width / target[0]
    scale_y = image.height / target[1]
    left, top, right, bottom = crop_box
    source_box = (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y)
    return image.resize((right - left, bottom - top), Image.Resampling.BILINEAR, box=source_box)
