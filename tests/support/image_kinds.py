"""Real-world image kinds made from real photos at test time, and the documented decoding as a reference.

Every kind a camera, phone, scanner or web page produces that the server accepts: EXIF orientations, CMYK
and YCCK JPEGs, LAB and YCbCr TIFFs, greyscale, palettes with and without transparency, alpha, 16-bit, progressive JPEG, WebP,
GIF, extreme shapes, 12 MP, a few pixels. Each is encoded from a real photo (seeded choice), so the codecs
and the resize see photographic content rather than a synthetic pattern.

``reference_rgb`` is the README's decoding rule written out here from Pillow's public API, deliberately
without importing densenet_server: open, apply the EXIF orientation, then convert to RGB, where 16-bit
greyscale is scaled by 255/65535 (not clipped) and alpha is dropped (Pillow's RGBA -> RGB). Tests compare
the project's answers with torchvision's pipeline applied to that image.
"""

from __future__ import annotations

import io
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops, ImageOps
from torch import nn
from torchvision.models import DenseNet121_Weights

from support.hostile_corpus import encode, png

SEED = 20261125
EXIF_ORIENTATION = 0x0112
TWELVE_MP = (4000, 3000)
JPEG_QUALITY = 90
_TRANSFORM = DenseNet121_Weights.IMAGENET1K_V1.transforms()
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


@dataclass(frozen=True)
class Kind:
    name: str  # a file name: the kind, the source photo, the format's extension
    data: bytes


# --- building blocks ---------------------------------------------------------------------------------


def exif_with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return exif


def cmyk_with_black(rgb: Image.Image) -> Image.Image:
    """CMYK with black generation (K = 255 - max(R, G, B)), as print workflows make it; Pillow's own
    RGB -> CMYK leaves K at 0, which would never exercise the K channel."""
    pixels = np.asarray(rgb.convert("RGB"), dtype=np.float64)
    black = 255.0 - pixels.max(axis=2, keepdims=True)
    room = np.maximum(255.0 - black, 1.0)  # 0 only where black is 255, and there C, M, Y do not matter
    cmy = 255.0 * (255.0 - pixels - black) / room
    return Image.fromarray(np.round(np.concatenate([cmy, black], axis=2)).astype(np.uint8), "CMYK")


def adobe_ycck_jpeg(cmyk: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """An Adobe YCCK JPEG (APP14 transform 2) whose decoded CMYK is ``cmyk``.

    Pillow cannot write YCCK (its JPEG encoder says so). It does write 4-component JPEGs with an Adobe
    APP14 marker, transform 0, storing inverted CMYK (Adobe's convention). A YCCK file differs only in
    what the components mean: YCbCr of the C, M, Y channels, plus K, with transform 2 telling the decoder
    to convert back. So the C, M, Y channels are converted to YCbCr first (Pillow's JFIF conversion, the
    one libjpeg inverts), encoded as if they were CMY, and the transform byte set to 2. libjpeg then
    decodes YCC -> RGB -> inverted CMY, as for a file from Photoshop. (Checked once against
    libjpeg-turbo's own YCCK encoder, via simplejpeg: same marker, same decoded pixels within JPEG noise.)
    """
    cyan, magenta, yellow, black = cmyk.split()
    luma, blue, red = Image.merge("RGB", (cyan, magenta, yellow)).convert("YCbCr").split()
    # Pillow stores 255 - value; libjpeg's YCCK output C is 255 - R and Pillow inverts it back: so the
    # stored Y, Cb, Cr must be the ones computed above, that is, saved as 255 - them.
    stored = Image.merge("CMYK", [ImageChops.invert(channel) for channel in (luma, blue, red)] + [black])
    data = bytearray(encode(stored, "JPEG", quality=quality))
    adobe = data.index(b"Adobe") - 4  # the APP14 marker's first byte: FF EE, then a 2-byte length
    transform = adobe + 4 + 11  # marker, length, "Adobe", version, flags0, flags1, then the transform
    assert data[adobe : adobe + 2] == b"\xff\xee" and data[transform] == 0
    data[transform] = 2
    return bytes(data)


def sixteen_bit_grey(rgb: Image.Image, seed: int) -> Image.Image:
    """16-bit greyscale using all 16 bits (8-bit photo values spread with seeded low bits)."""
    grey = np.asarray(rgb.convert("L"), dtype=np.uint32) * 257
    noise = np.random.default_rng(seed).integers(-128, 128, grey.shape)
    return Image.fromarray(np.clip(grey + noise, 0, 65535).astype(np.uint16))


def png_48_bit(rgb: Image.Image, seed: int) -> bytes:
    """16 bits per channel RGB PNG (Pillow cannot write it), from a photo with seeded low bits."""
    pixels = np.asarray(rgb.convert("RGB"), dtype=np.uint32) * 257
    pixels = np.clip(pixels + np.random.default_rng(seed).integers(-128, 128, pixels.shape), 0, 65535)
    rows = pixels.astype(">u2").view(np.uint8).reshape(rgb.height, -1)
    filtered = np.concatenate([np.zeros((rgb.height, 1), np.uint8), rows], axis=1)  # filter type 0 per row
    return png(rgb.width, rgb.height, 16, 2, zlib.compress(filtered.tobytes()))


def with_alpha(rgb: Image.Image, seed: int) -> Image.Image:
    """RGBA with a seeded alpha: a ramp with fully transparent and fully opaque areas."""
    ramp = np.linspace(-64, 320, rgb.width)[np.newaxis, :] + np.random.default_rng(seed).integers(0, 64, (rgb.height, 1))
    alpha = Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8), "L")
    image = rgb.convert("RGBA")
    image.putalpha(alpha)
    return image


def palette(rgb: Image.Image) -> Image.Image:
    return rgb.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)


def most_used_index(image: Image.Image) -> int:
    return int(np.bincount(np.asarray(image).ravel()).argmax())


def photo_crop(rgb: Image.Image) -> Image.Image:
    """A non-square crop, so that a wrong rotation also changes the shape."""
    return rgb.crop((0, 0, rgb.width, rgb.height * 3 // 4))


# --- the kinds ---------------------------------------------------------------------------------------

Builder = Callable[[Image.Image, int], bytes]


def _exif_kinds() -> dict[str, Builder]:
    kinds: dict[str, Builder] = {}
    for n in range(2, 9):
        kinds[f"exif-{n}.jpg"] = lambda p, s, n=n: encode(photo_crop(p), "JPEG", quality=JPEG_QUALITY, exif=exif_with_orientation(n))
        kinds[f"exif-{n}.png"] = lambda p, s, n=n: encode(photo_crop(p), "PNG", exif=exif_with_orientation(n))
    kinds["exif-6.webp"] = lambda p, s: encode(photo_crop(p), "WEBP", lossless=True, exif=exif_with_orientation(6))
    kinds["exif-5.tiff"] = lambda p, s: encode(photo_crop(p), "TIFF", exif=exif_with_orientation(5))
    return kinds


def _transparent_palette_png(photo: Image.Image) -> bytes:
    image = palette(photo)
    return encode(image, "PNG", transparency=most_used_index(image))


KINDS: dict[str, Builder] = {
    **_exif_kinds(),
    "cmyk.jpg": lambda p, s: encode(cmyk_with_black(p), "JPEG", quality=JPEG_QUALITY),
    "ycck.jpg": lambda p, s: adobe_ycck_jpeg(cmyk_with_black(p)),
    "cmyk.tiff": lambda p, s: encode(cmyk_with_black(p), "TIFF", compression="tiff_lzw"),
    "lab.tiff": lambda p, s: encode(p.convert("LAB"), "TIFF"),
    "ycbcr.tiff": lambda p, s: encode(p.convert("YCbCr"), "TIFF"),
    "grey.jpg": lambda p, s: encode(p.convert("L"), "JPEG", quality=JPEG_QUALITY),
    "grey.png": lambda p, s: encode(p.convert("L"), "PNG"),
    "palette.png": lambda p, s: encode(palette(p), "PNG"),
    "palette-transparent.png": lambda p, s: _transparent_palette_png(p),
    "palette.gif": lambda p, s: encode(palette(p), "GIF"),
    "rgba.png": lambda p, s: encode(with_alpha(p, s), "PNG"),
    "rgba.webp": lambda p, s: encode(with_alpha(p, s), "WEBP", lossless=True, exact=True),
    "la.png": lambda p, s: encode(with_alpha(p, s).convert("LA"), "PNG"),
    "grey-16-bit.png": lambda p, s: encode(sixteen_bit_grey(p, s), "PNG"),
    "grey-16-bit.tiff": lambda p, s: encode(sixteen_bit_grey(p, s), "TIFF"),
    "rgb-48-bit.png": png_48_bit,
    "progressive.jpg": lambda p, s: encode(p, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True),
    "lossy.webp": lambda p, s: encode(p, "WEBP", quality=80),
    "wide.jpg": lambda p, s: encode(p.resize((3200, 200), Image.Resampling.BICUBIC), "JPEG", quality=JPEG_QUALITY),
    "tall.png": lambda p, s: encode(p.resize((180, 2880), Image.Resampling.BICUBIC), "PNG"),
    "12-mp.jpg": lambda p, s: twelve_mp_jpeg(p),
    "tiny-1x1.png": lambda p, s: encode(p.resize((1, 1), Image.Resampling.BOX), "PNG"),
    "tiny-3x7.png": lambda p, s: encode(p.resize((3, 7), Image.Resampling.BOX), "PNG"),
}


def twelve_mp_jpeg(photo: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """A phone-sized JPEG (4000x3000) upscaled from a photo."""
    return encode(photo.convert("RGB").resize(TWELVE_MP, Image.Resampling.BICUBIC), "JPEG", quality=quality)


def chosen_photos(photos: Sequence[Path], count: int, seed: int = SEED) -> list[Path]:
    """``count`` photos picked with a fixed seed (all of them, cycled, if there are fewer)."""
    pool = list(photos)
    random.Random(seed).shuffle(pool)
    return [pool[i % len(pool)] for i in range(count)]


def build_kinds(photos: Sequence[Path], names: Sequence[str] | None = None, seed: int = SEED) -> list[Kind]:
    """One image of each kind (all of KINDS unless ``names``), each from a different photo."""
    names = list(KINDS) if names is None else list(names)
    kinds = []
    for number, (name, photo) in enumerate(zip(names, chosen_photos(photos, len(names), seed))):
        with Image.open(photo) as source:
            data = KINDS[name](source.convert("RGB"), seed + number)
        kinds.append(Kind(f"{Path(name).stem}-{photo.stem}{Path(name).suffix}", data))
    return kinds


# --- the reference -----------------------------------------------------------------------------------


def reference_rgb(data: bytes) -> Image.Image:
    """The documented decoding (README, "How images are decoded"), from Pillow's API alone.

    Pillow's TIFF reader applies TIFF's orientation tag itself while loading; exif_transpose covers the
    other formats' EXIF."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened)
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.round(np.asarray(image, dtype=np.float64) * 255.0 / 65535.0).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")  # drops alpha; CMYK, YCCK, LAB, YCbCr, palettes, greyscale by Pillow's rules


def torchvision_probabilities(model: nn.Module, images: Sequence[Image.Image], batch_size: int = 8) -> np.ndarray:
    """torchvision's transform and model on decoded RGB images: softmax rows, float64."""
    rows = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([_TRANSFORM(image) for image in images[start : start + batch_size]])
        with torch.inference_mode():
            rows.append(model.eval()(batch).softmax(dim=1).double().numpy())
    return np.concatenate(rows)


def torchvision_input(image: Image.Image) -> np.ndarray:
    """torchvision's transform of a decoded image: the model input, [3, 224, 224] float32."""
    return _TRANSFORM(image).numpy()
