"""A lone image's resize in strips (resize_strips.py): the very bits of Pillow's whole resize, or no split."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import _centre_crop_box, crop, resized_size
from densenet_server.resize_strips import exact_plan, horizontal_first, resize_crop

FILTERS = [
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
    Image.Resampling.HAMMING,
]


class CountingExecutor(ThreadPoolExecutor):
    """A pool that counts what it was given and remembers which threads ran it."""

    def __init__(self) -> None:
        super().__init__(4, thread_name_prefix="strip")
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


# Hypothesis runs a test many times within one fixture's life: its examples share this pool.
SHARED_POOL = ThreadPoolExecutor(6, thread_name_prefix="strip")


@pytest.fixture
def executor() -> Iterator[CountingExecutor]:
    pool = CountingExecutor()
    yield pool
    pool.shutdown()


def random_image(width: int, height: int) -> Image.Image:
    pixels = np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def whole_and_plan(
    width: int, height: int, resize_size: int, crop_size: int, resample: Image.Resampling, parts: int
) -> tuple[Image.Image, np.ndarray, Any]:
    image = random_image(width, height)
    target = resized_size(width, height, resize_size)
    crop_box = _centre_crop_box(*target, crop_size)
    whole = np.asarray(image.resize(target, resample).crop(crop_box))
    return image, whole, exact_plan(image.size, target, crop_box, resample, parts)


@pytest.mark.parametrize("resample", FILTERS)
@pytest.mark.parametrize(
    "size",
    [
        (500, 375),  # the benchmark's web photo: rows
        (375, 500),  # portrait: columns
        (4000, 3000),  # a 12-MP phone photo
        (255, 255),  # upscaled
        (301, 257),  # barely shrunk: a strip's pass order would differ, and the plan must see it
        (1000, 225),  # very wide
        (512, 1200),  # over twice as tall as wide, with an exact row scale
        (3, 7),
    ],
)
@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_strips_are_the_whole_resizes_bits(
    size: tuple[int, int], resample: Image.Resampling, parts: int, executor: CountingExecutor
) -> None:
    image, whole, plan = whole_and_plan(*size, 256, 224, resample, parts)
    if plan is not None:
        assert np.array_equal(resize_crop(image, plan, executor), whole)


@settings(max_examples=80, deadline=None)
@given(
    width=st.integers(1, 900),
    height=st.integers(1, 900),
    sizes=st.sampled_from([(256, 224), (232, 224), (384, 384), (342, 299), (256, 256)]),
    resample=st.sampled_from(FILTERS),
    parts=st.integers(1, 6),
)
def test_strips_are_the_whole_resizes_bits_on_any_shape(
    width: int, height: int, sizes: tuple[int, int], resample: Image.Resampling, parts: int
) -> None:
    image, whole, plan = whole_and_plan(width, height, *sizes, resample, parts)
    if plan is not None:
        assert np.array_equal(resize_crop(image, plan, SHARED_POOL), whole)


def test_a_landscape_photo_splits_its_crops_rows_and_a_portrait_its_columns() -> None:
    landscape = exact_plan((500, 375), (341, 256), (58, 16, 282, 240), Image.Resampling.BILINEAR, 2)
    portrait = exact_plan((375, 500), (256, 341), (16, 58, 240, 282), Image.Resampling.BILINEAR, 2)
    assert landscape is not None and landscape.split_rows and landscape.edges == (16, 128, 240)
    assert portrait is not None and not portrait.split_rows and portrait.edges == (16, 128, 240)
    one = exact_plan((500, 375), (341, 256), (58, 16, 282, 240), Image.Resampling.BILINEAR, 1)
    assert one is not None and one.edges == (16, 240)


def test_a_scale_exact_in_binary_splits_whatever_the_resize_size() -> None:
    """232 = 8 x 29: a side of 29 x 1001 pixels has the scale 1001/8, exact, so the strips are exact
    (only the plan is computed: no image of that size is made)."""
    target = resized_size(29_029, 29_029, 232)
    plan = exact_plan((29_029, 29_029), target, _centre_crop_box(*target, 224), Image.Resampling.BILINEAR, 2)
    assert plan is not None and plan.split_rows and plan.edges == (4, 116, 228)


def test_never_more_strips_than_the_crop_has_rows() -> None:
    image, whole, plan = whole_and_plan(4000, 3000, 256, 224, Image.Resampling.BILINEAR, 1000)
    assert plan is not None and plan.edges == tuple(range(16, 241))
    assert np.array_equal(resize_crop(image, plan, SHARED_POOL), whole)


def test_as_many_strips_as_keep_pillows_pass_order() -> None:
    """A strip of 56 of a 500x375 photo's rows would go vertical first (375 - 56 > 2 x (500 - 341)): 16
    strips asked for, 3 given, rather than none."""
    image, whole, plan = whole_and_plan(500, 375, 256, 224, Image.Resampling.BILINEAR, 16)
    assert plan is not None and plan.edges == (16, 90, 165, 240)
    assert np.array_equal(resize_crop(image, plan, SHARED_POOL), whole)


@pytest.mark.parametrize("parts", [2, 4])
def test_the_strips_run_on_the_executor_and_the_calling_thread(parts: int, executor: CountingExecutor) -> None:
    image, whole, plan = whole_and_plan(4000, 3000, 256, 224, Image.Resampling.BILINEAR, parts)
    assert plan is not None and len(plan.edges) == parts + 1
    assert np.array_equal(resize_crop(image, plan, executor), whole)
    assert executor.submitted == parts - 1


def test_without_an_executor_the_strips_run_one_after_another() -> None:
    image, whole, plan = whole_and_plan(500, 375, 256, 224, Image.Resampling.BILINEAR, 3)
    assert plan is not None and len(plan.edges) == 4
    assert np.array_equal(resize_crop(image, plan, None), whole)


@pytest.mark.parametrize(
    ("size", "resize_size", "crop_size", "resample", "why"),
    [
        ((500, 375), 232, 224, Image.Resampling.BILINEAR, "375/232 is not exact in binary"),
        # A crop of all 384 rows: its box (0, 376) passes through float32 exactly, but the scale does not.
        ((500, 376), 384, 384, Image.Resampling.BILINEAR, "376/384 is not exact in binary"),
        # The scale is exact, but 240 x 8388609/256 needs 28 bits: float32 would round the box.
        ((16_777_218, 8_388_609), 256, 224, Image.Resampling.BILINEAR, "the box is not exact in float32"),
        ((500, 1100), 256, 224, Image.Resampling.BILINEAR, "over twice as tall: the whole resize goes vertical first"),
        ((500, 375), 256, 224, Image.Resampling.NEAREST, "NEAREST is not a convolution in Pillow"),
        ((301, 257), 256, 224, Image.Resampling.BILINEAR, "a strip of 224 rows would go vertical first"),
    ],
)
def test_no_plan_where_the_bits_cannot_be_promised(
    size: tuple[int, int], resize_size: int, crop_size: int, resample: Image.Resampling, why: str
) -> None:
    target = resized_size(*size, resize_size)
    assert exact_plan(size, target, _centre_crop_box(*target, crop_size), resample, 1) is None, why


@pytest.mark.parametrize(
    ("size", "target", "box"),
    [
        ((500, 1100), (256, 563), None),  # the height shrinks more than twice the width: vertical first
        ((500, 375), (341, 256), None),
        ((255, 255), (256, 256), None),
        ((300, 700), (250, 600), None),  # exactly twice: still horizontal first
        ((150, 112), (342, 112), (0.0, 28.0, 150.0, 84.0)),  # the height kept (a box): horizontal first
    ],
)
def test_the_pass_order_rule_is_pillows(
    size: tuple[int, int], target: tuple[int, int], box: tuple[float, float, float, float] | None
) -> None:
    """horizontal_first() must say what the installed Pillow does: its resize equals the two one-axis
    resizes in that order (and, for these shapes, not in the other)."""
    image = random_image(*size)
    bilinear = Image.Resampling.BILINEAR
    left, top, right, bottom = box or (0.0, 0.0, float(size[0]), float(size[1]))
    whole = np.asarray(image.resize(target, bilinear, box=(left, top, right, bottom)))
    width_first = np.asarray(
        image.resize((target[0], size[1]), bilinear, box=(left, 0.0, right, float(size[1])))
        .resize(target, bilinear, box=(0.0, top, float(target[0]), bottom))
    )
    height_first = np.asarray(
        image.resize((size[0], target[1]), bilinear, box=(0.0, top, float(size[0]), bottom))
        .resize(target, bilinear, box=(left, 0.0, right, float(target[1])))
    )
    expected, other = (width_first, height_first) if horizontal_first(size, target) else (height_first, width_first)
    assert np.array_equal(whole, expected)
    assert not np.array_equal(whole, other)


def test_crop_hands_a_lone_images_strips_to_its_executor(executor: CountingExecutor) -> None:
    image = random_image(500, 375)
    split = crop(image, DENSENET121.preprocessing, 2, executor)
    assert executor.submitted == 1
    assert np.array_equal(split, crop(image, DENSENET121.preprocessing))
