"""Generated images for the GPU decoding route: for each, whether nvJPEG may decode it (None) or why not.

Shared by tests/unit (the route, and decoding on the CPU device) and tests/gpu (nvJPEG on the same images).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

LIMIT = 40_000_000


def photo(width: int = 400, height: int = 300, seed: int = 1) -> Image.Image:
    """Smooth colour gradients with some noise: compresses like a photo, not like static."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    channels = [(x * 255 / max(1, width - 1)), (y * 255 / max(1, height - 1)), ((x + y) % 256)]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, format: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def with_exif_orientation(orientation: int) -> bytes:
    image = photo()
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, exif=exif.tobytes())


def patch_frame(data: bytes, change: Callable[[bytearray], None]) -> bytes:
    """The JPEG with its SOF0 segment (marker, length, precision, size, components) changed by ``change``."""
    start = data.index(b"\xff\xc0", 0, data.index(b"\xff\xda"))
    patched = bytearray(data)
    segment = patched[start : start + 19]  # marker 2, length 2, precision 1, size 4, count 1, 3 x 3 components
    change(segment)
    patched[start : start + 19] = segment
    return bytes(patched)


def set_byte(offset: int, value: int) -> Callable[[bytearray], None]:
    def change(segment: bytearray) -> None:
        segment[offset] = value

    return change


def set_component_ids(ids: bytes) -> Callable[[bytearray], None]:
    def change(segment: bytearray) -> None:
        for i, component_id in enumerate(ids):
            segment[10 + 3 * i] = component_id

    return change


def with_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """A segment inserted right after SOI."""
    return data[:2] + bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def mpo() -> bytes:
    return encode(photo(), "MPO", save_all=True, append_images=[photo(seed=2)])


XMP_ROTATED = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)
BASELINE = encode(photo(), quality=90)

# name -> (bytes, expected: None for the GPU, else a fragment of the reason it goes to the CPU)
ROUTES: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "baseline 4:2:0": (lambda: BASELINE, None),
    "baseline 4:4:4": (lambda: encode(photo(), subsampling=0), None),
    "baseline 4:2:2": (lambda: encode(photo(), subsampling=1), None),
    "progressive": (lambda: encode(photo(), progressive=True), None),
    "optimised Huffman tables": (lambda: encode(photo(), optimize=True), None),
    "EXIF orientation 1": (lambda: with_exif_orientation(1), None),
    "ICC profile": (lambda: encode(photo(), icc_profile=b"\x00" * 128), None),
    "restart markers": (lambda: encode(photo(), restart_marker_blocks=4), None),
    "odd size 1x1": (lambda: encode(photo(1, 1)), None),
    "EXIF orientation 6": (lambda: with_exif_orientation(6), "EXIF orientation 6"),
    "EXIF orientation 3": (lambda: with_exif_orientation(3), "EXIF orientation 3"),
    "XMP orientation 6": (lambda: encode(photo(), xmp=XMP_ROTATED), "EXIF orientation 6"),
    "greyscale": (lambda: encode(photo().convert("L")), "greyscale"),
    "CMYK": (lambda: encode(photo().convert("CMYK")), "CMYK or YCCK"),
    "RGB component ids": (lambda: patch_frame(BASELINE, set_component_ids(b"RGB")), "RGB-coded"),
    "Adobe transform 0": (lambda: with_segment(BASELINE, 0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00"), "RGB-coded"),
    "Adobe transform 1": (lambda: with_segment(BASELINE, 0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01"), None),
    "12-bit": (lambda: patch_frame(BASELINE, set_byte(4, 12)), "12-bit"),
    "lossless (SOF3)": (lambda: patch_frame(BASELINE, set_byte(1, 0xC3)), "SOF3"),
    "arithmetic (SOF9)": (lambda: patch_frame(BASELINE, set_byte(1, 0xC9)), "SOF9"),
    "chroma sampled finer than luma": (
        lambda: patch_frame(BASELINE, lambda s: (s.__setitem__(11, 0x11), s.__setitem__(14, 0x22))),
        "unusual chroma subsampling",
    ),
    "MPO": (mpo, "multi-picture"),
    "over the pixel limit": (lambda: BASELINE, "over the pixel limit"),  # see route_limit
    "long and thin": (lambda: encode(photo(4, 4000)), "long and thin"),
    "truncated": (lambda: BASELINE[: len(BASELINE) // 2], "end-of-image"),
    "data after the end": (lambda: BASELINE + b"trailing", "end-of-image"),
    "PNG": (lambda: encode(photo(), "PNG"), "not a JPEG"),
    "16-bit PNG": (lambda: encode(Image.fromarray(np.full((30, 40), 40000, np.uint16)), "PNG"), "not a JPEG"),
    "WebP": (lambda: encode(photo(), "WEBP"), "not a JPEG"),
    "GIF": (lambda: encode(photo(), "GIF"), "not a JPEG"),
    "BMP": (lambda: encode(photo(), "BMP"), "not a JPEG"),
    "TIFF": (lambda: encode(photo(), "TIFF"), "not a JPEG"),
    "empty": (lambda: b"", "not a JPEG"),
    "text": (lambda: b"hello, this is not an image", "not a JPEG"),
    "SOI only": (lambda: b"\xff\xd8", "not a JPEG"),
    "a broken segment length": (lambda: BASELINE[:2] + b"\xff\xe0\x00\x01" + BASELINE[2:], "not a JPEG"),
}


def route_limit(name: str) -> int:
    """The pixel limit a route is checked under: 400x300 is over 100,000."""
    return 100_000 if name == "over the pixel limit" else LIMIT


def as_jpegs(paths: Sequence[Path]) -> list[bytes]:
    """Photos (the labelled PNGs) as the JPEGs a client would send: quality 90, 4:2:0."""
    return [encode(Image.open(path).convert("RGB"), quality=90) for path in paths]
