"""What the service needs from whoever runs the model, and what it says about the model it runs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..batching import Completed
from ..model_record import ModelRecord, Preprocessing
from ..preprocess import normalize
from ..weights import WeightsInfo


class EngineUnavailable(RuntimeError):
    """The engine process cannot be reached (it is starting, failed, or gone)."""


class DeviceDecodeRefused(RuntimeError):
    """The engine could not decode a request's JPEGs on its device; the caller decodes them with Pillow."""


@dataclass(frozen=True)
class ModelInfo:
    """The model being served, as answers, v2 metadata and /metrics report it."""

    record: ModelRecord
    weights: WeightsInfo
    backend: str
    precision: str
    device: str

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def categories(self) -> tuple[str, ...]:
        return self.record.categories

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": self.record.to_dict(),
            "weights": self.weights.to_dict(),
            "backend": self.backend,
            "precision": self.precision,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelInfo:
        return cls(
            ModelRecord.from_dict(values["record"]),
            WeightsInfo.from_dict(values["weights"]),
            str(values["backend"]),
            str(values["precision"]),
            str(values["device"]),
        )


class Engine(Protocol):
    """Runs batches of images through the model, for the request threads of one process."""

    @property
    def loaded(self) -> bool:
        """Loaded, warm, and able to take work."""
        ...

    @property
    def info(self) -> ModelInfo: ...

    @property
    def queued_images(self) -> int: ...

    def load(self) -> None:
        """Block until the model can be used (or raise why it cannot)."""
        ...

    def ensure_room(self, count: int) -> None:
        """Raise QueueFull now if ``count`` images would not fit in the queue."""
        ...

    def expecting(self, count: int) -> contextlib.AbstractContextManager[None]:
        """Announce ``count`` images that this thread is preparing, for the batcher's wait."""
        ...

    def run(self, rows: np.ndarray, timeout_s: float) -> Completed:
        """Logits of ``rows``: uint8 crops [N, crop, crop, 3] or normalised float32 pixels [N, 3, crop, crop]."""
        ...

    def run_jpegs(self, datas: Sequence[bytes], timeout_s: float) -> Completed:
        """Logits of encoded JPEGs that the engine decodes on its device (for a CUDA engine, and only JPEGs
        nvjpeg_route accepted); raises DeviceDecodeRefused if it cannot decode one of them."""
        ...

    def stop(self, grace_s: float) -> None:
        """Finish what was accepted (for at most ``grace_s``) and release the model."""
        ...


def check_rows(rows: np.ndarray, preprocessing: Preprocessing) -> None:
    """ValueError unless ``rows`` is a non-empty batch of uint8 crops or of float32 pixels of this size."""
    expected = {
        np.dtype(np.uint8): preprocessing.crop_shape, np.dtype(np.float32): preprocessing.input_shape
    }.get(rows.dtype)
    if expected is None or rows.ndim != 4 or tuple(rows.shape[1:]) != expected or len(rows) == 0:
        raise ValueError(
            f"expected uint8 crops [N, {', '.join(map(str, preprocessing.crop_shape))}] or float32 pixels "
            f"[N, {', '.join(map(str, preprocessing.input_shape))}], got {rows.dtype} {list(rows.shape)}"
        )


def as_pixels(rows: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """The model's input for ``rows`` (see check_rows): crops are normalised, pixels pass through."""
    check_rows(rows, preprocessing)
    if rows.dtype == np.uint8:
        return normalize(rows, preprocessing)
    return np.ascontiguousarray(rows)
