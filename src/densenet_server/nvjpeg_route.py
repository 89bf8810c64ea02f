"""Which encoded images nvJPEG may decode, read from their markers (and Pillow's orientation): no PyTorch.

The HTTP fronts use it to choose, per request, between sending the encoded bytes to a CUDA engine (which
decodes them in batches on its GPU, gpu_decode.py) and decoding them here with Pillow as always; so it must
import nothing that a torch-free front lacks. cpu_reason() lets through only 8-bit baseline or progressive
Huffman JPEGs with three YCbCr components in a common subsampling, whose EXIF orientation (as Pillow reads
it, XMP included) is 1, whose size is within the limits, and which end with the end-of-image marker.

It also refuses every image of a model whose preprocessing the device does not reproduce: the GPU path resizes
with torchvision's tensor resize, which comes close to Pillow's only for the filter measured (bilinear,
antialiased; tests/unit/test_gpu_decode.py). A model with another interpolation (bicubic, e.g. EfficientNet)
is served from Pillow's crops, exactly as on a CPU engine.
"""

from __future__ import annotations

import io

from PIL import Image

from .jpeg_header import JpegHeader, read_jpeg_header
from .model_record import Preprocessing
from .preprocess import MAX_FULL_RESIZE_PIXELS, resized_size

HUFFMAN_SOF = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
# Luma sampling factors of 4:4:4, 4:2:2, 4:4:0, 4:2:0 and 4:1:1 with 1x1 chroma: the layouts nvJPEG decodes.
LUMA_SAMPLING = frozenset({(1, 1), (2, 1), (1, 2), (2, 2), (4, 1)})
RGB_COMPONENT_IDS = (ord("R"), ord("G"), ord("B"))
EXIF_ORIENTATION = 0x0112
# The resize filters whose tensor version (torchvision, antialiased) the project measured against Pillow's.
DEVICE_INTERPOLATIONS = ("bilinear",)


def device_preprocessing_reason(preprocessing: Preprocessing) -> str | None:
    """Why no image of a model with this preprocessing may be prepared on the device, or None."""
    if preprocessing.interpolation not in DEVICE_INTERPOLATIONS:
        return f"{preprocessing.interpolation} resizing is done by Pillow only (the device's is bilinear)"
    return None


def cpu_reason(data: bytes, max_pixels: int, preprocessing: Preprocessing) -> str | None:
    """Why these bytes must be decoded on the CPU (Pillow), or None when nvJPEG may decode them and the device
    prepare them for a model with this preprocessing."""
    reason = device_preprocessing_reason(preprocessing)
    if reason is not None:
        return reason
    header = read_jpeg_header(data)
    if header is None:
        return "not a JPEG, or its markers are broken"
    reason = _coding_reason(header) or _size_reason(header, max_pixels, preprocessing)
    if reason is None and not header.ends_with_eoi:
        reason = "no end-of-image marker at the end (truncated, or data after it)"
    return reason or _orientation_reason(data)


def nvjpeg_can_decode(data: bytes, max_pixels: int, preprocessing: Preprocessing) -> bool:
    return cpu_reason(data, max_pixels, preprocessing) is None


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


def _size_reason(header: JpegHeader, max_pixels: int, preprocessing: Preprocessing) -> str | None:
    if header.width < 1 or header.height < 1:
        return "no size in the frame header"
    if header.width * header.height > max_pixels:
        return f"{header.width}x{header.height} is over the pixel limit"
    width, height = resized_size(header.width, header.height, preprocessing.resize_size)
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


def within_size_limits(data: bytes, max_pixels: int, preprocessing: Preprocessing) -> bool:
    """The size checks alone, from the markers (no Pillow): the engine's second guard on its device memory."""
    header = read_jpeg_header(data)
    return header is not None and _size_reason(header, max_pixels, preprocessing) is None
