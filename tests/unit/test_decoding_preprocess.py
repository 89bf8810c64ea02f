"""Decoding: every mode becomes RGB with its colours (orientation, CMYK, LAB, 16-bit in detail in
test_decoding_kinds.py), broken data and unaccepted formats are refused, the pixel limit comes first."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image
from support.hostile_corpus import encode
from support.patches import patch_centres, patches
from support.paths import CAT_JPEG

from densenet_server.decoding import ImageTooLarge, InvalidImage, UnsupportedImageFormat, decode_image

LIMIT = 40_000_000
JPEG_TOLERANCE = 4  # levels, for flat block-aligned patches at quality 95
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)]


def palette_image() -> Image.Image:
    image = patches("P", range(len(PALETTE)))
    image.putpalette([channel for colour in PALETTE for channel in colour])
    return image


@dataclass(frozen=True)
class ModeCase:
    image: Image.Image
    fmt: str
    expected: list[tuple[int, ...]]  # the RGB at each patch's centre
    tolerance: int = 0
    options: dict[str, object] = field(default_factory=dict)


def greys(values: list[int]) -> list[tuple[int, ...]]:
    return [(value,) * 3 for value in values]


GREYS = [0, 90, 200, 255]
HIGH_QUALITY = {"quality": 95}
# Alpha is dropped: the RGB stored under a transparent pixel is what the model sees (README, "How images
# are decoded"); a palette's transparent entry keeps its colour likewise.
MODES = {
    "L.png": ModeCase(patches("L", GREYS), "PNG", greys(GREYS)),
    "L.jpg": ModeCase(patches("L", GREYS), "JPEG", greys(GREYS), JPEG_TOLERANCE, HIGH_QUALITY),
    "P.png": ModeCase(palette_image(), "PNG", PALETTE),
    "P-transparent.png": ModeCase(palette_image(), "PNG", PALETTE, options={"transparency": 1}),
    "P.gif": ModeCase(palette_image(), "GIF", PALETTE),
    "RGBA.png": ModeCase(
        patches("RGBA", [(255, 0, 0, 0), (0, 255, 0, 128), (10, 20, 30, 255)]), "PNG", [(255, 0, 0), (0, 255, 0), (10, 20, 30)]
    ),
    "LA.png": ModeCase(patches("LA", [(50, 0), (200, 255)]), "PNG", greys([50, 200])),
    "1.tiff": ModeCase(patches("1", [0, 1]), "TIFF", greys([0, 255])),
    "CMYK.jpg": ModeCase(
        patches("CMYK", [(255, 0, 0, 0), (0, 0, 0, 255)]), "JPEG", [(0, 255, 255), (0, 0, 0)], JPEG_TOLERANCE, HIGH_QUALITY
    ),
}


@pytest.mark.parametrize("name", sorted(MODES))
def test_modes_become_rgb_with_their_colours(name: str) -> None:
    case = MODES[name]
    decoded = decode_image(encode(case.image, case.fmt, **case.options), LIMIT)
    assert decoded.mode == "RGB" and decoded.size == case.image.size
    assert np.abs(patch_centres(decoded, len(case.expected)) - np.array(case.expected)).max() <= case.tolerance


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InvalidImage),
        (b"hello, world", InvalidImage),
        (CAT_JPEG.read_bytes()[:1500], InvalidImage),
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
