"""Decoding on the GPU: which images nvJPEG may decode, and a batched decode + resize + crop + normalise.

torchvision.io.decode_jpeg(list, device="cuda") decodes a list of JPEGs with nvJPEG in one call. It takes
what Pillow takes only for ordinary photos, so cpu_reason() sends it only 8-bit baseline or progressive
Huffman JPEGs with three YCbCr components in a common subsampling, whose EXIF orientation (as Pillow reads
it, XMP included) is 1 and whose size is within the limits, and which end with the end-of-image marker;
everything else (PNG, WebP, GIF, BMP, TIFF, MPO, greyscale, CMYK/YCCK, RGB-coded, 12-bit, lossless,
arithmetic, rotated, truncated, too large, very long and thin) goes to the CPU path of today, which answers
it as it does now. The limits are applied before anything reaches the GPU.

The transform is preprocess.py's on tensors: short side to 256 (bilinear, antialiased, uint8 result as
Pillow's), centre crop 224 (torchvision's rounding), scale to [0, 1], normalise. The decoders differ (nvJPEG
or torchvision's libjpeg against Pillow's), so pixels differ a little; tests measure by how much.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from .decoding import ImageError
from .jpeg_header import JpegHeader, read_jpeg_header
from .preprocess import CROP_SIZE, MAX_FULL_RESIZE_PIXELS, MEAN, RESIZE_SHORT_SIDE, STD, resized_size

log = logging.getLogger(__name__)

HUFFMAN_SOF = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
# Luma sampling factors of 4:4:4, 4:2:2, 4:4:0, 4:2:0 and 4:1:1 with 1x1 chroma: the layouts nvJPEG decodes.
LUMA_SAMPLING = frozenset({(1, 1), (2, 1), (1, 2), (2, 2), (4, 1)})
RGB_COMPONENT_IDS = (ord("R"), ord("G"), ord("B"))
EXIF_ORIENTATION = 0x0112

PreparedImage = torch.Tensor | ImageError


def cpu_reason(data: bytes, max_pixels: int) -> str | None:
    """Why these bytes must be decoded on the CPU (Pillow), or None when nvJPEG may decode them."""
    header = read_jpeg_header(data)
    if header is None:
        return "not a JPEG, or its markers are broken"
    reason = _coding_reason(header) or _size_reason(header, max_pixels)
    if reason is None and not header.ends_with_eoi:
        reason = "no end-of-image marker at the end (truncated, or data after it)"
    return reason or _orientation_reason(data)


def nvjpeg_can_decode(data: bytes, max_pixels: int) -> bool:
    return cpu_reason(data, max_pixels) is None


def _coding_reason(header: JpegHeader) -> str | None:
    if header.multi_picture:
        return "a multi-picture (MPO) file"
    if header.sof not in HUFFMAN_SOF:
        return f"coding process SOF{header.sof - 0xC0} (nvJPEG takes baseline and progressive Huffman JPEGs)"
    if header.bits != 8:
        return f"{header.bits}-bit samples"
    count = len(header.components)
    if count != 3:
        return {1: "greyscale", 4: "CMYK or YCCK"}.get(count, f"{count} components")
    if header.adobe_transform == 0 or tuple(c.id for c in header.components) == RGB_COMPONENT_IDS:
        return "RGB-coded, not YCbCr"
    if header.adobe_transform not in (None, 1):
        return f"Adobe colour transform {header.adobe_transform}"
    luma, *chroma = header.components
    if (luma.h, luma.v) not in LUMA_SAMPLING or any((c.h, c.v) != (1, 1) for c in chroma):
        return "unusual chroma subsampling " + ",".join(f"{c.h}x{c.v}" for c in header.components)
    return None


def _size_reason(header: JpegHeader, max_pixels: int) -> str | None:
    if header.width < 1 or header.height < 1:
        return "no size in the frame header"
    if header.width * header.height > max_pixels:
        return f"{header.width}x{header.height} is over the pixel limit"
    width, height = resized_size(header.width, header.height)
    if width * height > MAX_FULL_RESIZE_PIXELS:
        # preprocess.py resizes only the crop of such an image; the GPU path would resize it all.
        return "so long and thin that its resize is over the limit"
    return None


def _orientation_reason(data: bytes) -> str | None:
    # Pillow's reading, as decoding.py applies it (ImageOps.exif_transpose): EXIF, else XMP tiff:Orientation.
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - whatever Pillow cannot read, the CPU path reports properly
        return "Pillow cannot read its header"
    return None if orientation == 1 else f"EXIF orientation {orientation}"


def decode_crops(datas: Sequence[bytes], device: str | torch.device) -> torch.Tensor:
    """uint8 [N, 3, 224, 224] on ``device``: decoded (nvJPEG on CUDA, in one call), resized, centre-cropped.

    Only for data nvjpeg_can_decode() accepted; raises RuntimeError if a decoder refuses one of them.
    """
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
    images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    return torch.stack([_resize_crop(image) for image in images])


def _resize_crop(image: torch.Tensor) -> torch.Tensor:
    # size=[256]: the short side, the long one truncated, as preprocess.resized_size.
    resized = F.resize(image, [RESIZE_SHORT_SIDE], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return F.center_crop(resized, [CROP_SIZE, CROP_SIZE])


def normalise(crops: torch.Tensor) -> torch.Tensor:
    """uint8 crops -> the model's float32 input, on their device."""
    pixels = F.to_dtype(crops, torch.float32, scale=True)
    return F.normalize(pixels, mean=MEAN.ravel().tolist(), std=STD.ravel().tolist())


def decode_batch(datas: Sequence[bytes], device: str | torch.device) -> torch.Tensor:
    """float32 [N, 3, 224, 224] on ``device``, for data nvjpeg_can_decode() accepted."""
    return normalise(decode_crops(datas, device))


def prepare_batch(
    datas: Sequence[bytes],
    device: str | torch.device,
    max_pixels: int,
    cpu_prepare: Callable[[bytes], np.ndarray],
) -> list[PreparedImage]:
    """Each image's float32 [3, 224, 224] on ``device``, or the ImageError the CPU path raised for it.

    nvJPEG decodes what it may, in one call; if that call fails, each of those images is tried alone, and
    what still fails goes to ``cpu_prepare`` (decoding.decode_image + preprocess), so a broken image gets
    today's answer and does not fail its batch. Everything else goes to ``cpu_prepare`` directly.
    """
    results: list[PreparedImage | None] = [None] * len(datas)
    for_gpu = [i for i, data in enumerate(datas) if nvjpeg_can_decode(data, max_pixels)]
    for index, pixels in _decode_on_device([datas[i] for i in for_gpu], device).items():
        results[for_gpu[index]] = pixels
    for i, data in enumerate(datas):
        if results[i] is None:
            results[i] = _cpu_prepared(data, device, cpu_prepare)
    return [result for result in results if result is not None]


def _decode_on_device(datas: Sequence[bytes], device: str | torch.device) -> dict[int, torch.Tensor]:
    if not datas:
        return {}
    try:
        return dict(enumerate(decode_batch(datas, device)))
    except RuntimeError as exc:
        log.info("batched decoding of %d JPEGs on %s failed (%s); decoding them one by one", len(datas), device, exc)
    decoded = {}
    for index, data in enumerate(datas):
        try:
            decoded[index] = decode_batch([data], device)[0]
        except RuntimeError as exc:
            log.info("decoding a JPEG on %s failed (%s); the CPU path decodes it", device, exc)
    return decoded


def _cpu_prepared(data: bytes, device: str | torch.device, cpu_prepare: Callable[[bytes], np.ndarray]) -> PreparedImage:
    try:
        return torch.from_numpy(cpu_prepare(data)).to(device)
    except ImageError as exc:
        return exc
