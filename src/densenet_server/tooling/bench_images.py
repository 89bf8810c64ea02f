"""Realistic request images for the benchmark and soak commands: photos re-encoded as typical JPEGs.

Web uploads are mostly JPEGs of a few hundred pixels a side; phones send 12-megapixel ones. Both are made
from real photos (the labelled set when present, else the repo's examples), so the decoder and the
resize do the work they do in production, not the work of a synthetic pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

WEB_SIZE = (500, 375)
PHONE_SIZE = (4000, 3000)  # 12 MP
JPEG_QUALITY = 90
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def find_photos(folders: Sequence[Path]) -> list[Path]:
    """The photos of the first folder that has any."""
    for folder in folders:
        photos = sorted(p for p in folder.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        if photos:
            return photos
    raise FileNotFoundError(f"no photos in {', '.join(map(str, folders))}")


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop to exactly ``size`` (landscape; portrait sources are turned)."""
    if image.height > image.width:
        image = image.transpose(Image.Transpose.ROTATE_90)
    scale = max(size[0] / image.width, size[1] / image.height)
    scaled = image.resize(
        (max(size[0], round(image.width * scale)), max(size[1], round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (scaled.width - size[0]) // 2
    top = (scaled.height - size[1]) // 2
    return scaled.crop((left, top, left + size[0], top + size[1]))


def write_jpegs(
    photos: Sequence[Path], out_dir: Path, size: tuple[int, int], prefix: str, limit: int | None = None
) -> list[Path]:
    """Re-encode ``photos`` as ``size`` JPEGs named ``<prefix>-NNN.jpg`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, photo in enumerate(photos[:limit]):
        target = out_dir / f"{prefix}-{number:03d}.jpg"
        with Image.open(photo) as image:
            _fit(image.convert("RGB"), size).save(target, "JPEG", quality=JPEG_QUALITY)
        written.append(target)
    return written
