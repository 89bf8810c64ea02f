"""Decoding on the GPU: which images nvJPEG may decode, and a batched decode + resize + crop + normalise.

torchvision.io.decode_jpeg(list, device="cuda") decodes a list of JPEGs with nvJPEG in one call. It takes
what Pillow takes only for ordinary photos, so cpu_reason() (nvjpeg_route.py, which imports no PyTorch so
that the HTTP fronts can route with it) sends it only 8-bit baseline or progressive Huffman JPEGs with three
YCbCr components in a common subsampling, whose EXIF orientation (as Pillow reads it, XMP included) is 1
and whose size is within the limits, and which end with the end-of-image marker; everything else (PNG, WebP, GIF, BMP, TIFF, MPO, greyscale, CMYK/YCCK, RGB-coded, 12-bit, lossless,
arithmetic, rotated, truncated, too large, very long and thin) goes to the CPU path of today, which answers
it as it does now. The limits are applied before anything reaches the GPU.

The transform is preprocess.py's on tensors, from the served model's record (model_record.Preprocessing):
the short side to its resize size (e.g. 256; bilinear, antialiased, uint8 result as Pillow's), the centre
crop (e.g. 224; torchvision's rounding), scale to [0, 1], normalise with its mean and std. Only bilinear
models get here: the route refuses the others (nvjpeg_route.device_preprocessing_reason), and so does this
module. The decoders differ (nvJPEG or torchvision's libjpeg against Pillow's), so pixels differ a little;
tests measure by how much.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from .decoding import ImageError
from .model_record import Preprocessing
from .nvjpeg_route import cpu_reason, device_preprocessing_reason, nvjpeg_can_decode

__all__ = ["cpu_reason", "decode_batch", "decode_crops", "decode_each", "normalise", "nvjpeg_can_decode", "prepare_batch"]

log = logging.getLogger(__name__)

PreparedImage = torch.Tensor | ImageError


def decode_crops(datas: Sequence[bytes], device: str | torch.device, preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 [N, 3, crop, crop] on ``device``: decoded (nvJPEG on CUDA, in one call), resized, centre-cropped.

    Only for data nvjpeg_can_decode() accepted; raises RuntimeError if a decoder refuses one of them, and
    ValueError for a preprocessing the device does not reproduce.
    """
    reason = device_preprocessing_reason(preprocessing)
    if reason is not None:
        raise ValueError(reason)
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
    images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    return torch.stack([_resize_crop(image, preprocessing) for image in images])


def _resize_crop(image: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    # One size: the short side, the long one truncated, as preprocess.resized_size.
    interpolation = InterpolationMode(preprocessing.interpolation)
    resized = F.resize(image, [preprocessing.resize_size], interpolation=interpolation, antialias=True)
    return F.center_crop(resized, [preprocessing.crop_size, preprocessing.crop_size])


def normalise(crops: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 crops -> the model's float32 input, on their device."""
    pixels = F.to_dtype(crops, torch.float32, scale=True)
    return F.normalize(pixels, mean=list(preprocessing.mean), std=list(preprocessing.std))


def decode_batch(datas: Sequence[bytes], device: str | torch.device, preprocessing: Preprocessing) -> torch.Tensor:
    """float32 [N, 3, crop, crop] on ``device``, for data nvjpeg_can_decode() accepted."""
    return normalise(decode_crops(datas, device, preprocessing), preprocessing)


def prepare_batch(
    datas: Sequence[bytes],
    device: str | torch.device,
    max_pixels: int,
    cpu_prepare: Callable[[bytes], np.ndarray],
    preprocessing: Preprocessing,
) -> list[PreparedImage]:
    """Each image's float32 [3, crop, crop] on ``device``, or the ImageError the CPU path raised for it.

    nvJPEG decodes what it may, in one call; if that call fails, each of those images is tried alone, and
    what still fails goes to ``cpu_prepare`` (decoding.decode_image + preprocess), so a broken image gets
    today's answer and does not fail its batch. Everything else goes to ``cpu_prepare`` directly.
    """
    results: list[PreparedImage | None] = [None] * len(datas)
    for_gpu = [i for i, data in enumerate(datas) if nvjpeg_can_decode(data, max_pixels, preprocessing)]
    for index, pixels in decode_each([datas[i] for i in for_gpu], device, preprocessing, decode_batch).items():
        results[for_gpu[index]] = pixels
    for i, data in enumerate(datas):
        if results[i] is None:
            results[i] = _cpu_prepared(data, device, cpu_prepare)
    return [result for result in results if result is not None]


Decode = Callable[[Sequence[bytes], str | torch.device, Preprocessing], torch.Tensor]


def decode_each(
    datas: Sequence[bytes], device: str | torch.device, preprocessing: Preprocessing, decode: Decode
) -> dict[int, torch.Tensor]:
    """``decode`` (decode_batch or decode_crops) of each image, by its index: all in one call, or, if that
    call fails, each alone; the indices missing from the answer are the images the decoder refused."""
    if not datas:
        return {}
    try:
        return dict(enumerate(decode(datas, device, preprocessing)))
    except RuntimeError as exc:
        log.info("batched decoding of %d JPEGs on %s failed (%s); decoding them one by one", len(datas), device, exc)
    decoded = {}
    for index, data in enumerate(datas):
        try:
            decoded[index] = decode([data], device, preprocessing)[0]
        except RuntimeError as exc:
            log.info("decoding a JPEG on %s failed (%s)", device, exc)
    return decoded


def _cpu_prepared(data: bytes, device: str | torch.device, cpu_prepare: Callable[[bytes], np.ndarray]) -> PreparedImage:
    try:
        return torch.from_numpy(cpu_prepare(data)).to(device)
    except ImageError as exc:
        return exc


class UndecodedImages(RuntimeError):
    """The device decoder refused these images (indices into the batch), even one at a time."""

    def __init__(self, indices: Sequence[int]) -> None:
        super().__init__(f"the decoder refused image(s) {list(indices)}")
        self.indices = list(indices)


def host_crops(datas: Sequence[bytes], device: str | torch.device, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 crops [N, crop, crop, 3] in host memory, decoded, resized and cropped on ``device``.

    The layout of the crops an HTTP front sends, so that from here on the engine treats both alike (the same
    normalisation, the same batcher). Raises UndecodedImages when the decoder refuses any of them.
    """
    decoded = decode_each(datas, device, preprocessing, decode_crops)
    missing = [index for index in range(len(datas)) if index not in decoded]
    if missing:
        raise UndecodedImages(missing)
    crops = torch.stack([decoded[index] for index in range(len(datas))])
    # A quarter of the bytes of float32 pixels cross to the host; .cpu() waits for the device's work.
    return crops.permute(0, 2, 3, 1).contiguous().cpu().numpy()
