"""The model in this process: a backend behind the dynamic batcher."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..backends import Backend, LoadedBackend, load_backend
from ..batching import Batcher, Completed
from ..config import Settings
from ..metrics import ModelMetrics
from ..model_record import ModelRecord
from ..weights import WeightsInfo
from .base import ModelInfo, as_pixels
from .jpegs import device_crops

log = logging.getLogger(__name__)


def warm_up(backend: Backend, input_shape: tuple[int, int, int]) -> None:
    """Run what the first real requests would otherwise pay for: lazy initialisation (ONNX Runtime and
    oneDNN prepare kernels per input shape), or the backend's own warm-up (CUDA graph capture)."""
    own_warm_up: Callable[[], None] | None = getattr(backend, "warm_up", None)
    if own_warm_up is not None:
        own_warm_up()
        return
    for predict in (backend.predict, *backend.lane_predicts):
        for size in (1, 2):
            predict(np.zeros((size, *input_shape), dtype=np.float32))


def model_info(backend: Backend, weights: WeightsInfo, record: ModelRecord) -> ModelInfo:
    return ModelInfo(record, weights, backend.name, backend.precision, getattr(backend, "device", "cpu"))


class LocalEngine:
    def __init__(
        self,
        settings: Settings,
        metrics: ModelMetrics | None = None,
        on_queue_change: Callable[[int], None] | None = None,
        loaded: LoadedBackend | None = None,
    ) -> None:
        """``loaded``: a backend the caller already loaded (the bench measures it raw, then through the
        service), served instead of the one ``settings`` would load."""
        self.settings = settings
        self.metrics = metrics
        self._on_queue_change = on_queue_change
        self._preloaded = loaded
        self._batcher: Batcher | None = None
        self._info: ModelInfo | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._batcher is not None

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise RuntimeError("the model is not loaded")
        return self._info

    @property
    def batcher(self) -> Batcher:
        if self._batcher is None:
            raise RuntimeError("the model is not loaded")
        return self._batcher

    @property
    def queued_images(self) -> int:
        return self._batcher.queued_images if self._batcher is not None else 0

    def load(self) -> None:
        started = time.monotonic()
        settings = self.settings
        loaded = self._preloaded if self._preloaded is not None else load_backend(settings)
        backend = loaded.backend
        # The batching defaults depend on the device: size them for the one --device auto resolved to.
        settings = dataclasses.replace(settings, device=backend.device)
        warm_up(backend, loaded.record.preprocessing.input_shape)
        self._info = model_info(backend, loaded.weights, loaded.record)
        self._batcher = Batcher(
            backend.predict,
            max_batch_size=settings.effective_max_batch_size(),
            max_wait_s=settings.max_batch_wait_ms / 1000.0,
            max_queue_images=settings.effective_max_queue_images(),
            on_batch=self.metrics.observe_batch if self.metrics is not None else None,
            parallel_predicts=backend.lane_predicts,
            on_queue_change=self._queue_changed,
        )
        self.load_seconds = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.observe_model_loaded(self._info, self.load_seconds)
        log.info(
            "model %s ready in %.2f s (backend %s, %s, device %s)",
            self._info.name, self.load_seconds, backend.name, backend.precision, self._info.device,
        )

    def _queue_changed(self, queued_images: int) -> None:
        if self.metrics is not None:
            self.metrics.set_queue_depth(queued_images)
        if self._on_queue_change is not None:
            self._on_queue_change(queued_images)

    def ensure_room(self, count: int) -> None:
        if self._batcher is not None:
            self._batcher.ensure_room(count)

    def expecting(self, count: int) -> contextlib.AbstractContextManager[None]:
        return self._batcher.expecting(count) if self._batcher is not None else contextlib.nullcontext()

    def run(self, rows: np.ndarray, timeout_s: float) -> Completed:
        return self.batcher.run(as_pixels(rows, self.info.record.preprocessing), timeout_s)

    def decode_jpegs(self, datas: Sequence[bytes]) -> np.ndarray:
        """uint8 crops of JPEGs decoded on the model's device (engine/jpegs.py); raises DeviceDecodeRefused."""
        return device_crops(datas, self.info.device, self.settings.max_image_pixels, self.info.record.preprocessing)

    def run_jpegs(self, datas: Sequence[bytes], timeout_s: float) -> Completed:
        started = time.monotonic()
        self.batcher.ensure_room(len(datas))  # refuse before decoding, as a front does before Pillow
        crops = self.decode_jpegs(datas)
        return self.run(crops, timeout_s - (time.monotonic() - started))

    def stop(self, grace_s: float) -> None:
        if self._batcher is not None:
            self._batcher.stop(grace_s)
