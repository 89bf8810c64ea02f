"""A corpus of awkward and hostile inputs, generated from scratch (seeded), with the answer each must get.

Odd but valid images must be classified (200); images in a format the server does not take are 415;
decompression bombs are 413 before any decoding; anything broken or not an image is 400. Every case has
a file name too, some of them awkward themselves (wrong or no extension, unicode, spaces), for the tests
that serve the corpus from the images folder or upload it with its name.
"""

from __future__ import annotations

import gzip
import io
import random
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

OK = (200, None)
INVALID = (400, "invalid_image")
UNSUPPORTED = (415, "unsupported_image_format")
TOO_LARGE = (413, "image_too_large")

# The corpus is built for the server's default --max-image-pixels.
MAX_IMAGE_PIXELS = 40_000_000


@dataclass(frozen=True)
class Case:
    name: str  # also the file name it is uploaded or served as
    data: bytes
    expected: tuple[int, str | None]  # (status, error code; None for a classification)

    @property
    def status(self) -> int:
        return self.expected[0]

    @property
    def code(self) -> str | None:
        return self.expected[1]


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gradient(width: int = 96, height: int = 64, mode: str = "RGB") -> Image.Image:
    """A smooth colour gradient (something for the codecs to compress), converted to ``mode``."""
    x = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, np.newaxis]
    rgb = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), (x + y) / 2], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB").convert(mode)


def frames(colours: list[str], size: tuple[int, int] = (32, 24)) -> list[Image.Image]:
    return [Image.new("RGB", size, colour) for colour in colours]


def animated(fmt: str, colours: list[str]) -> bytes:
    first, *rest = frames(colours)
    return encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0)


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)


def png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes, ihdr_crc: int | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr, ihdr_crc) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def png_48_bit(width: int = 16, height: int = 8) -> bytes:
    """16 bits per channel RGB, which Pillow cannot write itself."""
    row = b"\x00" + b"".join(struct.pack(">H", 257 * (x % 256)) * 3 for x in range(width))  # filter byte, pixels
    rows = row * height
    return png(width, height, 16, 2, zlib.compress(rows))


def png_of_zeros(width: int, height: int) -> bytes:
    """A real, fully decodable greyscale PNG of ``width`` x ``height`` that compresses to almost nothing."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png(width, height, 8, 0, idat)


def with_exif_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(gradient(80, 40), "JPEG", exif=exif)


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims another size."""
    data = bytearray(encode(gradient(16, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_with_screen(width: int, height: int) -> bytes:
    data = bytearray(encode(gradient(16, 16, "P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encode(gradient(16, 16), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def webp_with_size(width: int, height: int) -> bytes:
    """A small lossless WebP whose bitstream header (VP8L: 14 bits each for width-1 and height-1) claims
    another size."""
    data = bytearray(encode(gradient(16, 16), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    (bits,) = struct.unpack("<I", data[21:25])
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    data[21:25] = struct.pack("<I", bits)
    return bytes(data)


def up_to(data: bytes, marker: bytes) -> bytes:
    return data[: data.index(marker)]


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat.jpg", encode(gradient(), "JPEG"))
    return buffer.getvalue()


def tar_archive() -> bytes:
    buffer = io.BytesIO()
    payload = encode(gradient(), "PNG")
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("cat.png")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def seeded_bytes(count: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(count)


def _valid() -> list[Case]:
    rgb = gradient()
    return [
        # the accepted formats
        Case("rgb.jpg", encode(rgb, "JPEG", quality=90), OK),
        Case("progressive.jpg", encode(rgb, "JPEG", progressive=True, optimize=True), OK),
        Case("subsampling-444.jpg", encode(rgb, "JPEG", subsampling=0), OK),
        Case("rgb.png", encode(rgb, "PNG"), OK),
        Case("interlaced.png", encode(rgb, "PNG", interlace=1), OK),
        Case("lossy.webp", encode(rgb, "WEBP", quality=80), OK),
        Case("lossless.webp", encode(rgb, "WEBP", lossless=True), OK),
        Case("palette.gif", encode(gradient(mode="P"), "GIF"), OK),
        Case("rgb.bmp", encode(rgb, "BMP"), OK),
        Case("rgb.tiff", encode(rgb, "TIFF"), OK),
        Case("lzw.tiff", encode(rgb, "TIFF", compression="tiff_lzw"), OK),
        Case("jpeg-in.tiff", encode(rgb, "TIFF", compression="jpeg"), OK),
        # odd modes
        Case("grey.jpg", encode(gradient(mode="L"), "JPEG"), OK),
        Case("grey.png", encode(gradient(mode="L"), "PNG"), OK),
        Case("grey-16-bit.png", encode(Image.fromarray(np.arange(96 * 64, dtype=np.uint16).reshape(64, 96) * 10), "PNG"), OK),
        Case("grey-16-bit.tiff", encode(Image.fromarray(np.full((64, 96), 40000, dtype=np.uint16)), "TIFF"), OK),
        Case("rgb-48-bit.png", png_48_bit(), OK),
        Case("float.tiff", encode(Image.fromarray(np.linspace(0, 1, 96 * 64, dtype=np.float32).reshape(64, 96)), "TIFF"), OK),
        Case("bilevel.tiff", encode(gradient(mode="1"), "TIFF", compression="group4"), OK),
        Case("palette.png", encode(gradient(mode="P"), "PNG"), OK),
        Case("palette-transparent.png", encode(gradient(mode="P"), "PNG", transparency=0), OK),
        Case("rgba.png", encode(gradient(mode="RGBA"), "PNG"), OK),
        Case("grey-alpha.png", encode(gradient(mode="LA"), "PNG"), OK),
        Case("rgba.webp", encode(gradient(mode="RGBA"), "WEBP"), OK),
        Case("rgba.bmp", encode(gradient(mode="RGBA"), "BMP"), OK),
        Case("cmyk.jpg", encode(gradient(mode="CMYK"), "JPEG"), OK),
        Case("cmyk.tiff", encode(gradient(mode="CMYK"), "TIFF"), OK),
        Case("lab.tiff", encode(gradient(mode="LAB"), "TIFF"), OK),
        Case("ycbcr.tiff", encode(gradient(mode="YCbCr"), "TIFF"), OK),
        # animations: the first frame is classified
        Case("animated.gif", animated("GIF", ["red", "green", "blue"]), OK),
        Case("animated.webp", animated("WEBP", ["red", "green", "blue"]), OK),
        Case("animated.png", animated("PNG", ["red", "green", "blue"]), OK),
        # tiny and extreme shapes
        Case("one-pixel.png", encode(Image.new("RGB", (1, 1), "white"), "PNG"), OK),
        Case("one-pixel.jpg", encode(Image.new("RGB", (1, 1), "white"), "JPEG"), OK),
        Case("one-pixel.gif", encode(Image.new("P", (1, 1)), "GIF"), OK),
        Case("one-pixel.bmp", encode(Image.new("RGB", (1, 1)), "BMP"), OK),
        Case("one-by-40000.png", png_of_zeros(1, 40_000), OK),
        Case("40000-by-one.png", png_of_zeros(40_000, 1), OK),
        Case("3-by-5000.jpg", encode(gradient(3, 5000), "JPEG"), OK),
        # orientation
        Case("exif-rotate-90.jpg", with_exif_orientation(6), OK),
        Case("exif-rotate-270.jpg", with_exif_orientation(8), OK),
        Case("exif-mirror.jpg", with_exif_orientation(2), OK),
        Case("exif-orientation-out-of-range.jpg", with_exif_orientation(99), OK),
        # names
        Case("png-named.jpg", encode(rgb, "PNG"), OK),
        Case("jpeg-named.png", encode(rgb, "JPEG"), OK),
        Case("no-extension", encode(rgb, "JPEG"), OK),
        Case("name with spaces .JPG", encode(rgb, "JPEG"), OK),
        Case("ünïcödé 猫 фото.jpg", encode(rgb, "JPEG"), OK),
    ]


def _unsupported() -> list[Case]:
    rgb = gradient(16, 16)
    return [
        Case(f"image.{fmt.lower()}", encode(rgb if fmt != "XBM" else rgb.convert("1"), fmt), UNSUPPORTED)
        for fmt in ("ICO", "PCX", "TGA", "PPM", "SGI", "XBM", "JPEG2000", "QOI", "DDS", "AVIF")
    ]


def _bombs() -> list[Case]:
    return [
        Case("bomb-10-gigapixel-header.png", png(100_000, 100_000, 8, 2, zlib.compress(b"\x00" * 100)), TOO_LARGE),
        # Real, decodable, 120 kB: 42 million pixels, over the 40 MP limit, refused before decoding.
        Case("bomb-42-megapixel.png", png_of_zeros(7000, 6000), TOO_LARGE),
        Case("bomb-header.jpg", jpeg_with_size(65_000, 65_000), TOO_LARGE),
        Case("bomb-screen.gif", gif_with_screen(65_535, 65_535), TOO_LARGE),
        Case("bomb-header.bmp", bmp_with_size(100_000, 100_000), TOO_LARGE),
        Case("bomb-header.webp", webp_with_size(16_000, 16_000), TOO_LARGE),
    ]


def _broken() -> list[Case]:
    rgb = gradient()
    jpeg, png_file, gif = encode(rgb, "JPEG"), encode(rgb, "PNG"), encode(gradient(mode="P"), "GIF")
    webp, tiff, bmp = encode(rgb, "WEBP"), encode(rgb, "TIFF"), encode(rgb, "BMP")
    html = b"<!DOCTYPE html><html><head><title>cat</title></head><body><img src='cat.jpg'></body></html>"
    svg = (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b'<circle cx="32" cy="32" r="30" fill="orange"/></svg>'
    )
    return [
        Case("empty.jpg", b"", INVALID),
        Case("one-byte.png", b"\x89", INVALID),
        Case("nul-bytes.jpg", b"\x00" * 4096, INVALID),
        Case("truncated.jpg", half(jpeg), INVALID),
        Case("truncated.png", half(png_file), INVALID),
        Case("truncated.gif", half(gif), INVALID),
        Case("truncated.webp", half(webp), INVALID),
        Case("truncated.tiff", half(tiff), INVALID),
        Case("truncated.bmp", half(bmp), INVALID),
        Case("header-only.jpg", up_to(jpeg, b"\xff\xda"), INVALID),
        Case("header-only.png", up_to(png_file, b"IDAT")[:-4], INVALID),
        Case("header-only.gif", gif[:13], INVALID),
        Case("header-only.bmp", bmp[:54], INVALID),
        Case("header-only.webp", webp[:30], INVALID),
        Case("header-only.tiff", tiff[:8], INVALID),
        Case("bad-header-checksum.png", png(16, 16, 8, 2, zlib.compress(b"\x00" * 49 * 16), ihdr_crc=0), INVALID),
        Case("zero-width.png", png(0, 16, 8, 2, zlib.compress(b"\x00" * 16)), INVALID),
        Case("random.jpg", seeded_bytes(4096, 1), INVALID),
        Case("jpeg-magic-then-noise.jpg", b"\xff\xd8\xff\xe0" + seeded_bytes(4096, 2), INVALID),
        Case("png-magic-then-noise.png", b"\x89PNG\r\n\x1a\n" + seeded_bytes(4096, 3), INVALID),
        Case("gif-header-then-noise.gif", b"GIF89a" + struct.pack("<HH", 16, 16) + seeded_bytes(4096, 4), INVALID),
        Case("tiff-magic-then-noise.tiff", b"II*\x00" + seeded_bytes(4096, 5), INVALID),
        Case("text.jpg", b"this is plain text, not an image\n" * 10, INVALID),
        Case("page.html", html, INVALID),
        Case("vector.svg", svg, INVALID),
        Case("data.json", b'{"image": "cat.jpg", "top_k": 5}', INVALID),
        Case("document.pdf", encode(rgb, "PDF"), INVALID),
        Case("archive.zip", zip_archive(), INVALID),
        Case("archive.tar", tar_archive(), INVALID),
        Case("compressed.jpg.gz", gzip.compress(jpeg, mtime=0), INVALID),
        Case("program.elf", b"\x7fELF\x02\x01\x01" + seeded_bytes(1024, 6), INVALID),
    ]


BUILDERS: tuple[Callable[[], list[Case]], ...] = (_valid, _unsupported, _bombs, _broken)


def build_corpus() -> list[Case]:
    cases = [case for build in BUILDERS for case in build()]
    names = [case.name for case in cases]
    assert len(set(names)) == len(names), "case names are file names: they must be unique"
    return cases
