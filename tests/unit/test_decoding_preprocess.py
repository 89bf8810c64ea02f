from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densenet_server.decoding import ImageTooLarge, InvalidImage, UnsupportedImageFormat, decode_image

REPO_IMAGES = Path(__file__).resolve().parents[2] / "images"
LIMIT = 40_000_000


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_exif_orientation_is_applied() -> None:
    wide = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode_image(encode(wide, "JPEG", exif=exif), LIMIT)
    assert decoded.size == (20, 40)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "LA", "1"])
def test_modes_become_rgb(mode: str) -> None:
    fmt = "JPEG" if mode in {"L", "CMYK"} else ("TIFF" if mode == "1" else "PNG")
    decoded = decode_image(encode(Image.new(mode, (8, 8)), fmt), LIMIT)
    assert decoded.mode == "RGB"


def test_16_bit_greyscale_is_scaled_not_clipped() -> None:
    image = Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16))
    decoded = decode_image(encode(image, "PNG"), LIMIT)
    assert decoded.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImage),
        (b"hello, world", InvalidImage),
        ((REPO_IMAGES / "cat.jpg").read_bytes()[:1500], InvalidImage),
    ],
)
def test_broken_data(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_image(data, LIMIT)


def test_unaccepted_format() -> None:
    with pytest.raises(UnsupportedImageFormat):
        decode_image(encode(Image.new("RGB", (8, 8)), "ICO"), LIMIT)


def test_pixel_limit_is_checked_before_decoding() -> None:
    with pytest.raises(ImageTooLarge, match="limit is 100 pixels"):
        decode_image(encode(Image.new("RGB", (20, 20)), "PNG"), max_pixels=100)
