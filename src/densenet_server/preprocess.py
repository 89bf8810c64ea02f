"""RGB image -> the normalised float32 [3, crop, crop] array a model takes, with Pillow and NumPy only.

It reproduces torchvision's reference for a model's weights, ``weights.transforms()`` (its
ImageClassification preset) on a PIL image, step for step, from the parameters in the model's record
(model_record.Preprocessing), so that the server needs no PyTorch: resize the short side with Pillow's
filter of the same name (which is what torchvision calls for PIL images, antialiased), centre-crop with
torchvision's rounding, scale to [0, 1] and normalise with the mean and standard deviation in float32.
tests/unit/test_preprocess.py shows the result is bit-identical to torchvision's on real photos.
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np
from PIL import Image

from .model_record import Preprocessing
from .resize_strips import exact_plan, resize_crop

# A very long thin image (say 1x5000) would be resized to 256x1280000 before the crop throws almost all of
# it away: beyond this many resized pixels only the part that survives the crop is resized.
MAX_FULL_RESIZE_PIXELS = 16_000_000
# torchvision's InterpolationMode -> the Pillow filter it uses for PIL images.
_PILLOW_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
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


def preprocess(image: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """An RGB PIL image -> float32 [3, crop, crop], equal to torchvision's reference transform."""
    return normalize(crop(image, preprocessing), preprocessing)


def crop(image: Image.Image, preprocessing: Preprocessing, parts: int = 1, executor: Executor | None = None) -> np.ndarray:
    """The resized and centre-cropped pixels of an RGB image, uint8 [crop, crop, 3]: what travels from an
    HTTP front to the engine process (a quarter of the float32 size); normalize() finishes the reference
    transform.

    Only the crop's rows (or columns) are resized, in up to ``parts`` strips at once on ``executor``,
    where that is sure to give the bits of the whole resize (resize_strips.py); else the whole image."""
    target = resized_size(*image.size, preprocessing.resize_size)
    crop_box = _centre_crop_box(*target, preprocessing.crop_size)
    resample = _PILLOW_FILTERS[preprocessing.interpolation]
    if target == image.size:
        return np.asarray(image.crop(crop_box))
    if target[0] * target[1] > MAX_FULL_RESIZE_PIXELS:
        return np.asarray(_resize_crop_only(image, target, crop_box, resample))
    plan = exact_plan(image.size, target, crop_box, resample, parts)
    if plan is None:
        # The record guarantees crop <= resize size, so the crop never needs torchvision's padding.
        return np.asarray(image.resize(target, resample).crop(crop_box))
    return resize_crop(image, plan, executor)


def normalize(crops: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 crops [..., crop, crop, 3] -> normalised float32 [..., 3, crop, crop]. Element by element, so
    a batch gives the same bits as its images one at a time."""
    mean = np.array(preprocessing.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.array(preprocessing.std, dtype=np.float32).reshape(3, 1, 1)
    # In place, into one C-contiguous array (what ONNX Runtime takes without a copy): the same float32
    # operations as (crops / 255 - mean) / std, so the same bits, in 0.12 ms per image instead of 1.1
    # with the temporaries and the copy.
    pixels = np.empty((*crops.shape[:-3], 3, *crops.shape[-3:-1]), dtype=np.float32)
    np.divide(np.moveaxis(crops, -1, -3), np.float32(255), out=pixels)
    np.subtract(pixels, mean, out=pixels)
    np.divide(pixels, std, out=pixels)
    return pixels


def _resize_crop_only(
    image: Image.Image, target: tuple[int, int], crop_box: tuple[int, int, int, int], resample: Image.Resampling
) -> Image.Image:
    """The crop of the resized image, resizing only the source region it comes from (same filter scale;
    pixels may differ from the full resize by rounding of the filter positions)."""
    scale_x = image.width / target[0]
    scale_y = image.height / target[1]
    left, top, right, bottom = crop_box
    source_box = (left * scale_x, top * scale_y, right * scale_x, bottom * scale_y)
    return image.resize((right - left, bottom - top), resample, box=source_box)
