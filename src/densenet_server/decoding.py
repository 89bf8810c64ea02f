"""Encoded bytes -> an RGB PIL image, refusing what is not a usable image before it costs memory."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a browser or camera produces; the rest of Pillow's readers (PSD, ICO, PDF stubs, ...) are
# attack surface this server does not need. MPO is how Pillow names many phones' JPEGs.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})

# Pillow's own decompression-bomb guard has a fixed threshold (about 89 MP: a warning, an error at twice
# that) and reports through the warnings module, whose filters belong to whoever runs the process. The
# check in decode_image does the same job with the configured limit, on the header's size and before any
# pixel is decoded, and always as a clean ImageTooLarge; so Pillow's is switched off rather than left to
# warn, or to refuse images that --max-image-pixels allows.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """Base of the errors a caller's image can cause; each names what is wrong in its message."""


class InvalidImage(ImageError):
    """Empty, truncated, corrupt, or not an image at all."""


class UnsupportedImageFormat(ImageError):
    """A real image in a format the server does not accept."""


class ImageTooLarge(ImageError):
    """More pixels than the configured limit (decompression bombs included)."""


# JPEG can decode at 1/2, 1/4 or 1/8 scale almost for free (Pillow's draft()); below this ratio of wanted
# to stored size, one of those scales applies.
_DRAFT_SCALES_BELOW = 0.5


def image_pixels(data: bytes) -> int:
    """Width x height as the header says, without decoding (0 if unreadable: decode_image says why)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - whatever is wrong, decode_image reports it as the right ImageError
        return 0


def decode_image(data: bytes, max_pixels: int, reduce_to_short_side: int | None = None) -> Image.Image:
    """Decode the first frame, apply EXIF orientation and return it in RGB mode.

    ``reduce_to_short_side``: the fast path for large JPEGs. The decoder may return a smaller image, but
    never one whose short side is below this (the resize that follows needs no more); other formats are
    decoded in full. The probabilities move a little (see docs/performance.md), so it is opt-in.
    """
    if not data:
        raise InvalidImage("the image is empty (0 bytes)")
    try:
        # Only the header is read here, so the size check below runs before any pixel is decoded.
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image has too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("the data is not an image in a format this server can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image header is broken: {exc}") from exc
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageFormat(
            f"{image.format} images are not accepted; send one of: {', '.join(sorted(ACCEPTED_FORMATS))}"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
        )
    if width < 1 or height < 1:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    try:
        image.seek(0)
        if reduce_to_short_side and image.format in {"JPEG", "MPO"}:
            scale = reduce_to_short_side / min(width, height)
            if scale < _DRAFT_SCALES_BELOW:
                image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        image.load()
        # In place: without an orientation to undo, exif_transpose() would otherwise return a copy of the
        # whole image (28 ms of a 12-MP JPEG's time here).
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image has too many pixels: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError) as exc:
        # Pillow signals truncated or corrupt data with any of these, depending on the codec.
        raise InvalidImage(f"the image data is truncated or corrupt: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        # Pillow's convert("RGB") clips 16-bit values at 255, turning most photos white; scale instead.
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        grey = np.clip(np.round(pixels * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")
