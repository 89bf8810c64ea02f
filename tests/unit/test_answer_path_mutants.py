"""Decoding and preprocessing cases that mutation testing (scripts/mutation.sh) showed no other test held:
the greyscale scaling rules at their boundaries, the exact text of each refusal (the body of the client's
400 or 413), draft decoding at its threshold and for phones' MPO files, the header-only pixel count, and the
resize budget for extreme aspect ratios.

Expected values come from the README's documented rules ("How images are decoded") or from torchvision,
never from the code under test.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image
from support.hostile_corpus import encode, gradient
from support.paths import CAT_JPEG
from support.reference import reference_transform

from densenet_server.decoding import (
    ImageError,
    ImageTooLarge,
    InvalidImage,
    UnsupportedImageFormat,
    decode_image,
    image_pixels,
)
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import MAX_FULL_RESIZE_PIXELS, preprocess, resized_size

LIMIT = 40_000_000
TORCHVISION = reference_transform()
PREPROCESSING = DENSENET121.preprocessing
RESIZE_SHORT_SIDE = PREPROCESSING.resize_size  # 256
STD = np.array(PREPROCESSING.std, dtype=np.float32).reshape(3, 1, 1)


def grey_of(data: bytes) -> np.ndarray:
    """The decoded image's grey values, checking that all three channels carry them."""
    decoded = np.asarray(decode_image(data, LIMIT), dtype=np.int64)
    assert np.array_equal(decoded[..., 0], decoded[..., 1]) and np.array_equal(decoded[..., 0], decoded[..., 2])
    return decoded[..., 0]


def documented_grey(values: np.ndarray, peak: float) -> np.ndarray:
    """README: round(v x 255 / peak); values outside the range end at black or white, never wrap."""
    return np.clip(np.round(values.astype(np.float64) * 255 / peak), 0, 255)


# --- 16-bit and 32-bit greyscale ----------------------------------------------------------------------

EVERY_16_BIT_VALUE = np.arange(65536, dtype=np.uint16).reshape(256, 256)
# A dark 16-bit image: every value fits in 8 bits, but it is still 16-bit, so nearly black.
DARK_16_BIT = np.array([[0, 100, 128, 129, 200, 255]], dtype=np.uint16)


def sixteen_bit(values: np.ndarray, fmt: str) -> bytes:
    if fmt == "TIFF-big-endian":
        # Pillow opens a big-endian ("MM") TIFF as mode I;16B, a little-endian one and PNG as I;16.
        return encode(Image.fromarray(values.astype(">u2")), "TIFF")
    return encode(Image.fromarray(values), fmt)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "TIFF-big-endian"])
@pytest.mark.parametrize("values", [EVERY_16_BIT_VALUE, DARK_16_BIT], ids=["every-value", "dark"])
def test_16_bit_greyscale_is_scaled_by_65535_whatever_its_values(fmt: str, values: np.ndarray) -> None:
    assert np.array_equal(grey_of(sixteen_bit(values, fmt)), documented_grey(values, 65535))


def test_the_big_endian_tiff_is_really_i16b() -> None:
    with Image.open(io.BytesIO(sixteen_bit(DARK_16_BIT, "TIFF-big-endian"))) as image:
        assert image.mode == "I;16B"


@pytest.mark.parametrize(
    ("values", "peak"),
    [
        pytest.param([[0, 7, 255]], 255, id="max-255-is-8-bit"),
        pytest.param([[0, 7, 256]], 65535, id="max-256-is-16-bit"),
        pytest.param([[-70000, -1, 0, 40000]], 65535, id="negative-is-black"),
        pytest.param([[0, 65535, 65536, 70000, 2**31 - 1]], 65535, id="above-16-bit-is-white"),
    ],
)
def test_32_bit_greyscale_tiff_boundaries(values: list[list[int]], peak: int) -> None:
    pixels = np.array(values, dtype=np.int32)
    assert np.array_equal(grey_of(encode(Image.fromarray(pixels), "TIFF")), documented_grey(pixels, peak))


# --- refusals: the exact message the client gets --------------------------------------------------------


def refusal(data: bytes, error: type[ImageError], max_pixels: int = LIMIT) -> ImageError:
    with pytest.raises(error) as caught:
        decode_image(data, max_pixels)
    return caught.value


def bmp_with_header_size(size: int) -> bytes:
    data = bytearray(encode(gradient(8, 8), "BMP"))
    data[14:18] = size.to_bytes(4, "little")  # the DIB header's own length: 40 for the usual header
    return bytes(data)


def test_refusals_say_what_is_wrong() -> None:
    assert str(refusal(b"", InvalidImage)) == "the image is empty (0 bytes)"
    assert str(refusal(b"hello, world", InvalidImage)) == "the data is not an image in a format this server can read"
    assert str(refusal(encode(gradient(8, 8), "ICO"), UnsupportedImageFormat)) == (
        "ICO images are not accepted; send one of: BMP, GIF, JPEG, MPO, PNG, TIFF, WEBP"
    )
    assert str(refusal(encode(gradient(8, 9), "PNG"), ImageTooLarge, max_pixels=71)) == (
        "the image is 8x9 = 72 pixels; the limit is 71 pixels"
    )


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (bmp_with_header_size(1064), "the image header is broken: "),
        (CAT_JPEG.read_bytes()[:1500], "the image data is truncated or corrupt: "),
    ],
    ids=["broken-header", "truncated"],
)
def test_refusals_name_the_decoders_reason(data: bytes, prefix: str) -> None:
    error = refusal(data, InvalidImage)
    assert str(error) == f"{prefix}{error.__cause__}" and str(error.__cause__)


def test_pillows_bomb_error_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    # decoding.py switches Pillow's bomb guard off; were it on again (another library in the process),
    # its error must still reach the client as a 413 with the reason.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    error = refusal(encode(gradient(8, 8), "PNG"), ImageTooLarge)
    assert str(error) == f"the image has too many pixels: {error.__cause__}" and isinstance(
        error.__cause__, Image.DecompressionBombError
    )


def test_the_pixel_limit_is_inclusive_and_one_pixel_sides_are_images() -> None:
    assert decode_image(encode(gradient(8, 9), "PNG"), 72).size == (8, 9)
    assert decode_image(encode(gradient(1, 5), "PNG"), LIMIT).size == (1, 5)
    assert decode_image(encode(gradient(5, 1), "PNG"), LIMIT).size == (5, 1)


# --- draft decoding (--jpeg-draft) ------------------------------------------------------------------------


def test_draft_engages_only_below_half_scale() -> None:
    # Short side 512: the resize to 256 is exactly half, so the full image is decoded.
    half = encode(gradient(1024, 512), "JPEG")
    assert decode_image(half, LIMIT, reduce_to_short_side=RESIZE_SHORT_SIDE).size == (1024, 512)
    # Short side 514: below half, so 1/2 scale (never below 256 on the short side).
    below = encode(gradient(1028, 514), "JPEG")
    assert decode_image(below, LIMIT, reduce_to_short_side=RESIZE_SHORT_SIDE).size == (514, 257)


def test_draft_engages_on_phones_mpo_files() -> None:
    """Many phones' JPEGs carry a second picture and open as MPO: the same decoder, the same draft."""
    first, second = gradient(1200, 900), gradient(1200, 900).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert image.format == "MPO"
    assert decode_image(buffer.getvalue(), LIMIT).size == (1200, 900)
    assert decode_image(buffer.getvalue(), LIMIT, reduce_to_short_side=RESIZE_SHORT_SIDE).size == (600, 450)


# --- the header-only pixel count (the decode-memory budget uses it before decoding) -----------------------


def test_image_pixels_reads_the_header_only() -> None:
    png = encode(gradient(3, 5), "PNG")
    assert image_pixels(png) == 15
    # The header is enough: the size of an image whose data is cut off.
    with Image.open(CAT_JPEG) as cat:
        assert image_pixels(CAT_JPEG.read_bytes()[:1500]) == cat.width * cat.height
    assert image_pixels(b"not an image") == 0
    assert image_pixels(b"") == 0


# --- preprocessing: the resize budget ------------------------------------------------------------------


@contextmanager
def bounded_resize() -> Iterator[list[tuple[int, int]]]:
    """Fails any resize to more pixels than the budget before Pillow allocates them; records the sizes."""
    sizes: list[tuple[int, int]] = []
    original = Image.Image.resize

    def resize(self: Image.Image, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        assert size[0] * size[1] <= MAX_FULL_RESIZE_PIXELS, f"resize to {size} is over the budget"
        sizes.append((size[0], size[1]))
        return original(self, size, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image.Image, "resize", resize)
        yield sizes


@pytest.mark.parametrize("size", [(2, 5000), (5000, 2)], ids=["tall", "wide"])
def test_extreme_aspect_ratios_never_resize_past_the_budget(size: tuple[int, int]) -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    with bounded_resize() as sizes:
        ours = preprocess(image, PREPROCESSING)
    assert sizes == [(224, 224)]  # only the part the crop keeps
    reference = TORCHVISION(image).numpy()  # torchvision resizes in full: outside the bound
    assert (np.abs(ours - reference) * STD).max() <= 1 / 255 + 1e-6


def test_an_image_at_exactly_the_budget_is_resized_in_full() -> None:
    """Full resize up to and including the budget: bit-identical to torchvision. (1709x7 resizes to
    62500x256, the budget; its scale is not a round fraction, so resizing only the crop's source region
    would give other pixels.)"""
    width, height = 1709, 7
    resized = resized_size(width, height, RESIZE_SHORT_SIDE)
    assert resized[0] * resized[1] == MAX_FULL_RESIZE_PIXELS
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (height, width, 3), dtype=np.uint8))
    assert np.array_equal(preprocess(image, PREPROCESSING), TORCHVISION(image).numpy())
