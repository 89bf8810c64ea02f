"""What the service needs from whoever runs the model, and what it says about the model it runs."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..batching import Completed
from ..preprocess import CROP_SHAPE, INPUT_SHAPE, normalize
from ..weights import WeightsInfo


class EngineUnavailable(RuntimeError):
    """The engine process cannot be reached (it is starting, failed, or gone)."""


class DeviceDecodeRefused(RuntimeError):
    """The engine could not decode a request's JPEGs on its device; the caller decodes them with Pillow."""


@dataclass(frozen=True)
class ModelInfo:
    """The model being served, as answers, v2 metadata and /metrics report it."""

    name: str
    weights: WeightsInfo
    backend: str
    precision: str
    device: str
    categories: list[str]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["weights"] = self.weights.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelInfo:
        return cls(
            str(values["name"]),
            WeightsInfo.from_dict(values["weights"]),
            str(values["backend"]),
            str(values["precision"]),
            str(values["device"]),
            [str(label) for label in values["categories"]],
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
        """Logits of ``rows``: uint8 crops [N, 224, 224, 3] or normalised float32 pixels [N, 3, 224, 224]."""
        ...

    def run_jpegs(self, datas: Sequence[bytes], timeout_s: float) -> Completed:
        """Logits of encoded JPEGs that the engine decodes on its device (for a CUDA engine, and only JPEGs
        nvjpeg_route accepted); raises DeviceDecodeRefused if it cannot decode one of them."""
        ...

    def stop(self, grace_s: float) -> None:
        """Finish what was accepted (for at most ``grace_s``) and release the model."""
        ...


def check_rows(rows: np.ndarray) -> None:
    """ValueError unless ``rows`` is a non-empty batch of uint8 crops or of float32 pixels."""
    expected = {np.dtype(np.uint8): CROP_SHAPE, np.dtype(np.float32): INPUT_SHAPE}.get(rows.dtype)
    if expected is None or rows.ndim != 4 or tuple(rows.shape[1:]) != expected or len(rows) == 0:
        raise ValueError(
            f"expected uint8 crops [N, {', '.join(map(str, CROP_SHAPE))}] or float32 pixels "
            f"[N, {', '.join(map(str, INPUT_SHAPE))}], got {rows.dtype} {list(rows.shape)}"
        )


def as_pixels(rows: np.ndarray) -> np.ndarray:
    """The model's input for ``rows`` (see check_rows): crops are normalised, pixels pass through."""
    check_rows(rows)
    if rows.dtype == np.uint8:
        return normalize(rows)
    return np.ascontiguousarray(rows)
