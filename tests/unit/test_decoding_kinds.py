"""Decoded pixels against pixels known in advance, for every kind where a decoder can silently go wrong:
EXIF orientation (rotation and mirroring), CMYK and YCCK polarity, LAB and YCbCr colour, 16-bit depth.

Expected values come from the formats' definitions (the EXIF orientation table, the CMYK, JFIF YCbCr and
CIELAB formulas), never from Pillow's conversion of the same pixels, so a decoder that agrees with itself
but not with the image fails. Lossless encodings give exact pixels; JPEG cases use flat block-aligned
patches and a tolerance of a few levels, far below what a wrong conversion moves.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image
from support.hostile_corpus import encode
from support.image_kinds import adobe_ycck_jpeg, exif_with_orientation
from support.patches import CELL, displayed, patch_centres, patches

from densenet_server.decoding import decode_image

LIMIT = 40_000_000
JPEG_TOLERANCE = 4  # levels, for flat patches at quality 95: a wrong conversion moves them by 50 or more


def decoded_array(data: bytes) -> np.ndarray:
    image = decode_image(data, LIMIT)
    assert image.mode == "RGB"
    return np.asarray(image, dtype=np.int64)


# --- EXIF orientation ---------------------------------------------------------------------------------

# 5x3 random pixels: every one of the 8 orientations gives a different array, and 5x3 vs 3x5 shows a
# missing rotation by shape too.
STORED = np.random.default_rng(8).integers(0, 256, (3, 5, 3), dtype=np.uint8)
LOSSLESS = {"png": ("PNG", {}), "webp": ("WEBP", {"lossless": True}), "tiff": ("TIFF", {})}


@pytest.mark.parametrize("fmt", sorted(LOSSLESS))
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_lossless_exact(fmt: str, orientation: int) -> None:
    # TIFF: Pillow's reader applies the tag while loading; this also shows it is not applied twice.
    name, options = LOSSLESS[fmt]
    data = encode(Image.fromarray(STORED), name, exif=exif_with_orientation(orientation), **options)
    assert np.array_equal(decoded_array(data), displayed(STORED, orientation))


# 3x2 patches of distinct colours, for JPEG (its EXIF lives in another place than PNG's, WebP's, TIFF's).
GRID_COLOURS = [(230, 20, 20), (20, 200, 30), (30, 40, 220), (240, 230, 30), (20, 220, 230), (250, 250, 250)]
GRID_COLUMNS = 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(orientation: int) -> None:
    stored = patches("RGB", GRID_COLOURS, GRID_COLUMNS)
    data = encode(stored, "JPEG", quality=95, subsampling=0, exif=exif_with_orientation(orientation))
    decoded = decoded_array(data)
    # Where each patch's centre lands once displayed: the same transform applied to the cell grid.
    grid = np.array(GRID_COLOURS).reshape(-1, GRID_COLUMNS, 3)
    expected = displayed(grid, orientation)
    assert decoded.shape == (expected.shape[0] * CELL, expected.shape[1] * CELL, 3)
    centres = decoded[CELL // 2 :: CELL, CELL // 2 :: CELL]
    assert np.abs(centres - expected).max() <= JPEG_TOLERANCE, (centres.tolist(), expected.tolist())


def test_out_of_range_orientation_leaves_the_image_as_stored() -> None:
    data = encode(Image.fromarray(STORED), "PNG", exif=exif_with_orientation(99))
    assert np.array_equal(decoded_array(data), STORED)


# --- CMYK and YCCK ------------------------------------------------------------------------------------

# Process colours, paper, black, and mixtures with and without K.
CMYK_VALUES = [
    (0, 0, 0, 0), (255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255),
    (100, 50, 20, 60), (30, 200, 90, 0), (0, 128, 255, 128),
]


def cmyk_to_rgb(value: tuple[int, int, int, int]) -> tuple[int, ...]:
    """Ink on paper: each of C, M, Y takes away its complement, K darkens all three."""
    *cmy, black = value
    return tuple(round((255 - ink) * (255 - black) / 255) for ink in cmy)


EXPECTED_CMYK_RGB = np.array([cmyk_to_rgb(v) for v in CMYK_VALUES])


def test_cmyk_tiff_exact() -> None:
    decoded = patch_centres(decoded_array(encode(patches("CMYK", CMYK_VALUES), "TIFF")), len(CMYK_VALUES))
    assert np.abs(decoded - EXPECTED_CMYK_RGB).max() <= 1  # the formula's rounding


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda image: encode(image, "JPEG", quality=95), id="adobe-cmyk.jpg"),
        pytest.param(lambda image: adobe_ycck_jpeg(image, quality=95), id="adobe-ycck.jpg"),
    ],
)
def test_cmyk_and_ycck_jpeg(make: Callable[[Image.Image], bytes]) -> None:
    decoded = decoded_array(make(patches("CMYK", CMYK_VALUES)))
    assert np.abs(patch_centres(decoded, len(CMYK_VALUES)) - EXPECTED_CMYK_RGB).max() <= JPEG_TOLERANCE


# --- LAB and YCbCr --------------------------------------------------------------------------------

# Pillow's LAB mode: L* scaled to 0-255, a* and b* offset by 128 (TIFF stores them signed; Pillow's
# reader converts). Neutral greys, and strong red, green, yellow and blue directions.
LAB_VALUES = [(128, 128, 128), (200, 128, 128), (150, 200, 128), (150, 60, 128), (150, 128, 220), (150, 128, 40), (60, 200, 80)]
# XYZ (D50, the ICC connection space) -> linear sRGB, with Bradford adaptation to sRGB's D65 white.
XYZ_D50_TO_LINEAR_SRGB = np.array(
    [[3.1338561, -1.6168667, -0.4906146], [-0.9787684, 1.9161415, 0.0334540], [0.0719453, -0.2289914, 1.4052427]]
)
D50_WHITE = np.array([0.96422, 1.0, 0.82521])


def lab_to_srgb(value: tuple[int, int, int]) -> np.ndarray:
    """CIE 1976 L*a*b* (D50) -> 8-bit sRGB by the CIE and IEC 61966-2-1 definitions."""
    lightness, a, b = value[0] * 100 / 255, value[1] - 128, value[2] - 128
    fy = (lightness + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    delta = 6 / 29
    xyz = D50_WHITE * np.where(f > delta, f**3, 3 * delta**2 * (f - 4 / 29))
    linear = np.clip(XYZ_D50_TO_LINEAR_SRGB @ xyz, 0, 1)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.round(encoded * 255)


def test_lab_tiff_keeps_its_colours() -> None:
    decoded = decoded_array(encode(patches("LAB", LAB_VALUES), "TIFF"))
    expected = np.array([lab_to_srgb(v) for v in LAB_VALUES])
    # Colour management (LittleCMS, through Pillow) rounds differently from the formula by a level or two.
    assert np.abs(patch_centres(decoded, len(LAB_VALUES)) - expected).max() <= 3


YCBCR_VALUES = [(128, 128, 128), (100, 90, 200), (150, 200, 60), (80, 60, 90), (235, 128, 128), (16, 128, 128)]


def ycbcr_to_rgb(value: tuple[int, int, int]) -> np.ndarray:
    """JFIF's full-range YCbCr (ITU-T T.871), what TIFF's YCbCr means without other reference values."""
    y, cb, cr = value[0], value[1] - 128, value[2] - 128
    rgb = np.array([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb])
    return np.clip(np.round(rgb), 0, 255)


def test_ycbcr_tiff_keeps_its_colours() -> None:
    decoded = decoded_array(encode(patches("YCbCr", YCBCR_VALUES), "TIFF"))
    expected = np.array([ycbcr_to_rgb(v) for v in YCBCR_VALUES])
    assert np.abs(patch_centres(decoded, len(YCBCR_VALUES)) - expected).max() <= 1  # integer rounding


# --- 16-bit and 32-bit greyscale ----------------------------------------------------------------------

# Black, white, both sides of the first rounding boundary (v * 255 / 65535 = 0.498 and 0.502), mid-grey.
SIXTEEN_BIT = np.array([[0, 128, 129, 257], [1000, 32767, 32768, 40000], [65000, 65534, 65535, 12345]], dtype=np.uint16)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_scaled_by_65535(fmt: str) -> None:
    decoded = decoded_array(encode(Image.fromarray(SIXTEEN_BIT), fmt))
    grey = np.round(SIXTEEN_BIT.astype(np.float64) * 255 / 65535)
    assert np.array_equal(decoded, np.repeat(grey[..., np.newaxis], 3, axis=2))


@pytest.mark.parametrize(
    ("values", "peak"),
    [
        pytest.param([[0, 7, 100, 255]], 255, id="8-bit-values"),  # e.g. an 8-bit image stored as 32-bit
        pytest.param([[0, 256, 32768, 65535]], 65535, id="16-bit-values"),
    ],
)
def test_32_bit_greyscale_tiff_is_scaled_by_its_range(values: list[list[int]], peak: int) -> None:
    pixels = np.array(values, dtype=np.int32)
    decoded = decoded_array(encode(Image.fromarray(pixels), "TIFF"))
    grey = np.round(pixels * 255 / peak)
    assert np.array_equal(decoded[..., 0], grey) and np.array_equal(decoded[..., 0], decoded[..., 2])
