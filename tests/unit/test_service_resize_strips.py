"""The service splits a lone image's resize into strips (resize_strips.py) only when the CPUs would idle."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.paths import CAT_JPEG

from densenet_server import service as service_module
from densenet_server.config import Settings
from densenet_server.decoding import decode_image
from densenet_server.engine.base import ModelInfo
from densenet_server.model_record import DENSENET121
from densenet_server.pixel_budget import PixelBudget
from densenet_server.preprocess import crop
from densenet_server.service import MIN_PIXELS_TO_SPLIT, InferenceService
from densenet_server.weights import WeightsInfo

INFO = ModelInfo(DENSENET121, WeightsInfo("file x sha256:00", False, "00" * 32), "stand-in", "fp32", "cpu")
STRIPS = 3


@dataclass
class IdleEngine:
    """An engine that only reports its queue: prepare() never runs the model."""

    queued_images: int = 0
    loaded: bool = True
    info: ModelInfo = INFO

    def load(self) -> None:
        pass

    def ensure_room(self, count: int) -> None:
        pass

    def expecting(self, count: int) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def run(self, rows: np.ndarray, timeout_s: float) -> Any:
        raise AssertionError("prepare() must not run the model")

    def run_jpegs(self, datas: Sequence[bytes], timeout_s: float) -> Any:
        raise AssertionError("prepare() must not run the model")

    def stop(self, grace_s: float) -> None:
        pass


@dataclass
class Served:
    service: InferenceService
    engine: IdleEngine
    budget: PixelBudget
    parts: list[int]  # what each crop() was asked to split into


def jpeg(size: tuple[int, int]) -> bytes:
    with Image.open(CAT_JPEG) as photo:
        out = io.BytesIO()
        photo.convert("RGB").resize(size).save(out, "JPEG", quality=90)
        return out.getvalue()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[InferenceService] = []

    def start(**settings: Any) -> Served:
        parts: list[int] = []

        def recording_crop(image: Image.Image, preprocessing: Any, parts_asked: int = 1, executor: Any = None) -> np.ndarray:
            parts.append(parts_asked)
            return crop(image, preprocessing, parts_asked, executor)

        monkeypatch.setattr(service_module, "crop", recording_crop)
        engine, budget = IdleEngine(), PixelBudget(Settings().max_decoding_pixels)
        service = InferenceService(Settings(**settings), engine, pixel_budget=budget)  # type: ignore[arg-type]
        service.load()
        started.append(service)
        return Served(service, engine, budget, parts)

    yield start
    for service in started:
        service.stop()


def test_a_lone_image_is_resized_in_strips_with_the_same_pixels(serve: Any) -> None:
    served = serve(resize_strips=STRIPS)
    data = jpeg((500, 375))
    crops = served.service.prepare(data)
    assert served.parts == [STRIPS]
    assert np.array_equal(crops, crop(decode_image(data, Settings().max_image_pixels), DENSENET121.preprocessing))


def test_no_split_while_another_image_is_decoded_in_this_process(serve: Any) -> None:
    served = serve(resize_strips=STRIPS)
    with served.budget.reserve(1_000, 1.0):
        served.service.prepare(jpeg((500, 375)))
    assert served.parts == [1]


def test_no_split_while_images_wait_for_the_engine(serve: Any) -> None:
    served = serve(resize_strips=STRIPS)
    served.engine.queued_images = 2
    served.service.prepare(jpeg((500, 375)))
    assert served.parts == [1]


def test_no_split_for_a_small_image(serve: Any) -> None:
    served = serve(resize_strips=STRIPS)
    assert 400 * 240 < MIN_PIXELS_TO_SPLIT
    served.service.prepare(jpeg((400, 240)))
    assert served.parts == [1]


def test_one_strip_when_told(serve: Any) -> None:
    served = serve(resize_strips=1)
    served.service.prepare(jpeg((500, 375)))
    assert served.parts == [1]
