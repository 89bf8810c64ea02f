"""The centre crop of a resized image, resized in strips at once, with the very bits of one resize.

Pillow resizes in two passes, one along each axis, and releases the GIL while it does, so strips of one
image resize in parallel on several cores; and resizing only the rows (columns) the crop keeps saves
work even in one strip. A strip is ``image.resize(strip_size, box=its source region)``, and it gives the
bits of the same rows of ``image.resize(target)`` (what torchvision's reference calls) when
exact_plan() has checked that:

- **each output pixel's filter lands where it lands in the whole resize.** Pillow places it at
  ``box_start + (i + 0.5) * scale`` (the box passes through float32, the rest is double). Along the
  short side the scale is ``source / resize_size``; for a resize size of 256 (DenseNet's, and most
  models') it is exact in binary, so these products and sums are exact and a strip starting at output
  row ``r`` puts its filters exactly where the whole resize puts row ``r``'s. Where that is not exact
  the plan declines (e.g. a resize size of 232 and a side not a multiple of 29);
- **the passes run in the same order.** Pillow 13 runs the vertical pass first when the height shrinks
  by more than twice what the width does (Resample.c, ImagingResampleInner), judged on the sizes of each
  call, so a thin strip could judge differently from the whole resize: horizontal_first() states the
  rule, and the plan takes fewer, thicker strips where a thin one's order would differ, and declines
  where the whole resize goes vertical first (images over twice as tall as wide; each strip would run
  the vertical pass over the whole width). The tests compare with ``image.resize`` on many shapes, and
  pillow is pinned.

Along the other axis a strip spans the whole image, computed as in the whole resize; the centre crop
cuts it afterwards.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

# The filters Pillow resizes with Resample.c; NEAREST takes another code path and is never split.
_CONVOLUTION_FILTERS = frozenset(
    {
        Image.Resampling.BOX,
        Image.Resampling.BILINEAR,
        Image.Resampling.HAMMING,
        Image.Resampling.BICUBIC,
        Image.Resampling.LANCZOS,
    }
)


@dataclass(frozen=True)
class StripPlan:
    """``edges``: output rows (split_rows) or columns where the strips start and stop, the centre crop's
    range along that axis; ``keep``: the crop's range along the other axis."""

    source: tuple[int, int]
    target: tuple[int, int]
    resample: Image.Resampling
    split_rows: bool
    edges: tuple[int, ...]
    keep: slice


def horizontal_first(source: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether Pillow's resize from ``source`` to ``target`` runs its horizontal pass first: unless the
    height shrinks by more than twice what the width does."""
    height_shrink = source[1] - target[1]
    return not (height_shrink > 0 and height_shrink > (source[0] - target[0]) * 2)


def exact_plan(
    source: tuple[int, int],
    target: tuple[int, int],
    crop_box: tuple[int, int, int, int],
    resample: Image.Resampling,
    parts: int,
) -> StripPlan | None:
    """How to make the crop of ``source`` resized to ``target`` in as many strips as possible up to
    ``parts``, with the bits of the whole resize; None where that cannot be promised (then resize the
    whole image). Thin strips can change Pillow's pass order (a 500x375 photo keeps it in up to 3)."""
    if resample not in _CONVOLUTION_FILTERS or not horizontal_first(source, target):
        # Vertical first, each strip would run the vertical pass over the whole width: not worth it, and
        # rare (images over twice as tall as wide).
        return None
    left, top, right, bottom = crop_box
    # Rows first: their strips are contiguous in memory. Landscape images have an exact scale along y.
    for split_rows, first, last in ((True, top, bottom), (False, left, right)):
        axis = 1 if split_rows else 0
        if Fraction(source[axis] / target[axis]) != Fraction(source[axis], target[axis]):
            continue
        for count in range(min(parts, last - first), 0, -1):
            plan = StripPlan(
                source=source,
                target=target,
                resample=resample,
                split_rows=split_rows,
                edges=tuple(first + (last - first) * number // count for number in range(count + 1)),
                keep=slice(left, right) if split_rows else slice(top, bottom),
            )
            if _strips_are_exact(plan):
                return plan
    return None


def resize_crop(image: Image.Image, plan: StripPlan, executor: Executor | None) -> np.ndarray:
    """The crop, uint8 [rows, columns, 3]: the strips resized on ``executor`` and the calling thread."""
    strips = list(zip(plan.edges, plan.edges[1:]))

    def resize(bounds: tuple[int, int]) -> np.ndarray:
        return _resize_strip(image, plan, *bounds)

    if executor is None or len(strips) == 1:
        pieces = [resize(bounds) for bounds in strips]
    else:
        # The calling thread resizes the first strip itself rather than wait idle for the others.
        others = [executor.submit(resize, bounds) for bounds in strips[1:]]
        pieces = [resize(strips[0])] + [future.result() for future in others]
    return np.concatenate(pieces, axis=0 if plan.split_rows else 1)


def _resize_strip(image: Image.Image, plan: StripPlan, start: int, stop: int) -> np.ndarray:
    """Output rows (or columns) [start, stop) of the whole resize, cut to the crop along the other axis."""
    width, height = plan.source
    target_width, target_height = plan.target
    count = stop - start
    if plan.split_rows:
        scale = height / target_height
        box = (0.0, start * scale, float(width), stop * scale)
        return np.asarray(image.resize((target_width, count), plan.resample, box=box))[:, plan.keep]
    scale = width / target_width
    box = (start * scale, 0.0, stop * scale, float(height))
    return np.asarray(image.resize((count, target_height), plan.resample, box=box))[plan.keep, :]


def _strip_size(plan: StripPlan, start: int, stop: int) -> tuple[int, int]:
    return (plan.target[0], stop - start) if plan.split_rows else (stop - start, plan.target[1])


def _strips_are_exact(plan: StripPlan) -> bool:
    """Whether every strip's call takes the whole resize's pass order and places its filters exactly (the
    scale is already known exact; see the module's docstring)."""
    axis = 1 if plan.split_rows else 0
    scale = plan.source[axis] / plan.target[axis]
    for start, stop in zip(plan.edges, plan.edges[1:]):
        if not horizontal_first(plan.source, _strip_size(plan, start, stop)):
            return False
        # The box's length, computed in float32 by Pillow, is then exact too: both ends are multiples of
        # the same power of two, within 24 bits.
        if not (_is_float32(start * scale) and _is_float32(stop * scale)):
            return False
    return True


def _is_float32(value: float) -> bool:
    # Pillow takes a resize box as float32.
    return float(np.float32(value)) == value
