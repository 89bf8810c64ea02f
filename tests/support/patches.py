"""Images with pixels known in advance: flat colour patches, and exact expected orientations.

A flat 16x16 patch aligned to JPEG's blocks comes back from a high-quality JPEG within a few levels of
its value, so even lossy files have independently known expected pixels (read at the patch's centre).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

CELL = 16  # one JPEG MCU without chroma subsampling


def patches(mode: str, values: Sequence[int | tuple[int, ...]], columns: int | None = None) -> Image.Image:
    """Patches of ``values`` in reading order, ``columns`` per row (all in one row by default)."""
    columns = columns or len(values)
    rows = -(-len(values) // columns)
    image = Image.new(mode, (columns * CELL, rows * CELL))
    for number, value in enumerate(values):
        left, top = (number % columns) * CELL, (number // columns) * CELL
        image.paste(value, (left, top, left + CELL, top + CELL))
    return image


def patch_centres(image: Image.Image | np.ndarray, count: int, columns: int | None = None) -> np.ndarray:
    """The pixel at the centre of each of ``count`` patches, as int rows (one per patch)."""
    columns = columns or count
    pixels = np.asarray(image, dtype=np.int64)
    pixels = pixels.reshape(*pixels.shape[:2], -1)
    centres = [((n // columns) * CELL + CELL // 2, (n % columns) * CELL + CELL // 2) for n in range(count)]
    return np.array([pixels[y, x] for y, x in centres])


def displayed(stored: np.ndarray, orientation: int) -> np.ndarray:
    """How a viewer shows an image stored as ``stored`` ([height, width, ...]) with this EXIF orientation.

    From the EXIF specification's definition of the tag (where the stored 0th row and 0th column go),
    written with NumPy index operations so that it shares nothing with Pillow's exif_transpose.
    """
    transforms = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored left-right
        3: lambda a: a[::-1, ::-1],  # upside down
        4: lambda a: a[::-1, :],  # mirrored top-bottom
        5: lambda a: a.swapaxes(0, 1),  # stored row 0 is the left column, column 0 the top row
        6: lambda a: a[::-1].swapaxes(0, 1),  # row 0 is the right column, column 0 the top row: 90 deg clockwise
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # row 0 is the right column, column 0 the bottom row
        8: lambda a: a[:, ::-1].swapaxes(0, 1),  # row 0 is the left column, column 0 the bottom row
    }
    return np.ascontiguousarray(transforms[orientation](stored))
