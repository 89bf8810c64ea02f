"""The model behind the HTTP routes: decodes and crops images here, and runs them through an engine.

The engine is the dynamic batcher and the model: in this process (LocalEngine: tests, tools), or in the
engine process that `serve` starts, shared by every HTTP front (RemoteEngine). Routes call this and
never touch the model; this knows nothing of HTTP.

When the engine's model runs on CUDA, a request whose images are all JPEGs that nvJPEG decodes like Pillow
(nvjpeg_route.py) is not decoded here: its encoded bytes go to the engine, which decodes them in one call
on its GPU. Every other request (a PNG, a rotated photo, a broken file, or a mix) is decoded and cropped
here with Pillow, exactly as on a CPU engine; so is a request whose JPEGs the engine could not decode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from . import request_scope
from .batching import Completed
from .config import Settings
from .decoding import ImageError, decode_image, image_pixels
from .engine.base import DeviceDecodeRefused, Engine, ModelInfo, check_rows
from .engine.local import LocalEngine
from .metrics import Metrics, ModelMetrics
from .nvjpeg_route import nvjpeg_can_decode
from .pixel_budget import PixelBudget
from .postprocess import build_answer
from .postprocess import probabilities as output_probabilities
from .preprocess import crop

log = logging.getLogger(__name__)

# Below this many source pixels a resize takes well under a millisecond, and handing strips to other
# threads would cost about what it saves (500x375 JPEGs: 1.4 ms whole, 0.8 ms in 2 strips on 2 cores).
MIN_PIXELS_TO_SPLIT = 100_000


class NotReady(RuntimeError):
    """The model is still loading."""


class InferenceService:
    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        decoding_pixels: int | None = None,
        metrics: Metrics | None = None,
        pixel_budget: PixelBudget | None = None,
    ) -> None:
        """``settings``: the model's (models_file.py gives each model of a models file its own).
        ``decoding_pixels``: this process's share of --max-decoding-pixels (all of it by default), unless
        ``pixel_budget`` is given: one this process's models share. ``metrics``: the app's, shared by its
        models (a new registry by default)."""
        self.settings = settings
        self.name = settings.served_name()  # known before the model is loaded: routes choose by it
        self.metrics = metrics if metrics is not None else Metrics()
        self.model_metrics: ModelMetrics = self.metrics.for_model(self.name)
        self.engine: Engine = engine if engine is not None else LocalEngine(settings, self.model_metrics)
        self._ready = threading.Event()  # set once the model is loaded and warm
        self._draining = False  # set on SIGTERM: finish what was accepted, and say "not ready"
        self._pixel_budget = pixel_budget or PixelBudget(decoding_pixels or settings.max_decoding_pixels)
        self.load_seconds: float | None = None
        # Decodes the images of one multi-image request in parallel (Pillow releases the GIL).
        self._decoders: ThreadPoolExecutor | None = None
        # Resizes the strips of a lone image (resize_strips.py) beside the request thread. Apart from
        # the decoders: a strip never waits on anything, so a decoder waiting for its strips cannot
        # deadlock the pool.
        self._resizers: ThreadPoolExecutor | None = None
        self._strips = 1

    @property
    def loaded(self) -> bool:
        """The model is loaded and warm, so requests can be served (also while draining)."""
        return self._ready.is_set() and self.engine.loaded

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def ready(self) -> bool:
        """Whether new traffic should come here: loaded and not shutting down. Load plays no part: an
        overloaded server refuses the excess with 503 but stays ready (README, "What /ready means")."""
        return self.loaded and not self._draining

    @property
    def info(self) -> ModelInfo:
        if not self.loaded:
            raise NotReady("the model is not loaded yet; retry once GET /ready answers 200")
        return self.engine.info

    def start(self, on_failure: Callable[[BaseException], None]) -> threading.Thread:
        """Load in the background so liveness answers while the model loads; readiness waits for it."""

        def load_or_fail() -> None:
            try:
                self.load()
            except BaseException as exc:  # the process is useless without its model: report and stop
                log.critical("model loading failed: %s", exc)
                on_failure(exc)

        thread = threading.Thread(target=load_or_fail, name="model-loader", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        started = time.monotonic()
        self.engine.load()
        self._decoders = ThreadPoolExecutor(self.settings.effective_threads(), thread_name_prefix="decode")
        # Once: finding the usable CPUs reads the cgroup files (about 1 ms).
        self._strips = self.settings.effective_resize_strips()
        if self._strips > 1:
            self._resizers = ThreadPoolExecutor(self._strips - 1, thread_name_prefix="resize")
        self.load_seconds = time.monotonic() - started
        self._ready.set()

    def classify(self, data: bytes, top_k: int) -> dict[str, Any]:
        info = self.info
        outcome = self.image_probabilities([data])[0]
        if isinstance(outcome, ImageError):
            raise outcome
        return build_answer(info, outcome, top_k)

    def classify_many(self, images: Sequence[bytes], top_k: int) -> list[dict[str, Any] | ImageError]:
        """Each image's answer, or the ImageError that refused it, in order.

        The readable images go to the engine in one submit, so a multi-image request batches as a whole.
        """
        info = self.info
        outcomes = self.image_probabilities(images)
        return [build_answer(info, outcome, top_k) if isinstance(outcome, np.ndarray) else outcome for outcome in outcomes]

    def image_probabilities(self, images: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        """Each encoded image's probabilities [classes], or the ImageError that refused it, in order: decoded
        on the engine's GPU when the whole request may be (see the module's docstring), else here. They
        are announced to the batcher first, so that a batch may wait for them while they are decoded."""
        with self.engine.expecting(len(images)):
            return self._image_probabilities(images)

    def _image_probabilities(self, images: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        if self._decodes_on_device(images):
            probabilities = self._device_decoded_probabilities(images)
            if probabilities is not None:
                return list(probabilities)
        prepared = self.prepare_many(images)
        readable = [crops for crops in prepared if isinstance(crops, np.ndarray)]
        rows = iter(self.probabilities(np.stack(readable)) if readable else [])
        return [next(rows) if isinstance(crops, np.ndarray) else crops for crops in prepared]

    def _decodes_on_device(self, images: Sequence[bytes]) -> bool:
        """Whether these images go to the engine encoded. Never for a CPU engine, nor for a model whose
        preprocessing only Pillow reproduces (nvjpeg_route.py); and a request is never split between the
        two paths (one INFER, one kind of rows), so one image the route refuses sends all of them through
        Pillow here."""
        info = self.info
        if not images or not info.device.startswith("cuda"):
            return False
        preprocessing = info.record.preprocessing
        return all(nvjpeg_can_decode(data, self.settings.max_image_pixels, preprocessing) for data in images)

    def _device_decoded_probabilities(self, images: Sequence[bytes]) -> np.ndarray | None:
        """Probabilities of JPEGs the engine decodes on its device; None if it could not decode one of them.

        The limits come first, as for an image decoded here: nvjpeg_can_decode() checked the pixel limit on
        the header, and a full queue is refused now. The pixel budget is not reserved: nothing is decoded in
        this process."""
        self.engine.ensure_room(len(images))
        try:
            return self._timed_run(len(images), lambda timeout_s: self.engine.run_jpegs(images, timeout_s))
        except DeviceDecodeRefused as exc:
            log.info("the engine could not decode %d JPEG(s) on its device (%s); decoding them here", len(images), exc)
            return None

    def prepare_many(self, images: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        """Each image's crop, or the ImageError that refused it, in order; decoded in parallel."""

        def prepare_or_error(data: bytes) -> np.ndarray | ImageError:
            try:
                return self.prepare(data)
            except ImageError as exc:
                return exc

        if len(images) == 1 or self._decoders is None:
            return [prepare_or_error(data) for data in images]
        return list(self._decoders.map(prepare_or_error, images))

    def prepare(self, data: bytes) -> np.ndarray:
        """Encoded image -> its uint8 crop [crop, crop, 3]; raises decoding.ImageError for bad input."""
        preprocessing = self.info.record.preprocessing  # NotReady before the model is loaded
        reduce_to_short_side = preprocessing.resize_size if self.settings.jpeg_draft else None
        # Overloaded: refuse now, before the decoding this image would cost is spent on it.
        self.engine.ensure_room(1)
        budget_wait_s = request_scope.remaining_s(self.settings.request_timeout_s)
        pixels = image_pixels(data)
        with self._pixel_budget.reserve(pixels, budget_wait_s):
            started = time.monotonic()
            try:
                image = decode_image(data, self.settings.max_image_pixels, reduce_to_short_side)
                crops = crop(image, preprocessing, self._resize_strips(pixels, image), self._resizers)
            except ImageError as exc:
                self.model_metrics.image_refused(type(exc).__name__)
                raise
        self.model_metrics.observe_stage("preprocess", time.monotonic() - started)
        return crops

    def _resize_strips(self, reserved_pixels: int, image: Image.Image) -> int:
        """Into how many strips to split this image's resize: all of them when the CPUs would otherwise
        idle (nothing else being decoded in this process, no image waiting for the engine: a lone
        request), else one (the other requests keep the CPUs busy, and a split would only add handoffs)."""
        if self._resizers is None or image.width * image.height < MIN_PIXELS_TO_SPLIT:
            return 1
        if self._pixel_budget.in_use > reserved_pixels or self.engine.queued_images > 0:
            return 1
        return self._strips

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """uint8 crops [N, crop, crop, 3] or normalised float32 pixels [N, 3, crop, crop] -> probabilities
        [N, classes] (softmax, or a sigmoid per class for a multi-label model), batched with other requests'."""
        check_rows(rows, self.info.record.preprocessing)
        return self._timed_run(len(rows), lambda timeout_s: self.engine.run(rows, timeout_s))

    def _timed_run(self, count: int, run: Callable[[float], Completed]) -> np.ndarray:
        """Probabilities of what ``run`` (given the seconds left to the deadline) computes for ``count`` images."""
        record = self.info.record  # NotReady before the model is loaded
        started = time.monotonic()
        completed = run(request_scope.remaining_s(self.settings.request_timeout_s))
        request_scope.note_batch(count, completed.batch_size)
        self.model_metrics.observe_stage("batcher", time.monotonic() - started)
        self.model_metrics.count_classified(len(completed.logits))
        return output_probabilities(completed.logits, record)

    def begin_shutdown(self) -> None:
        """Report not ready, so that load balancers send new requests elsewhere, but keep serving the
        requests already accepted. Safe to call from a signal handler."""
        self._draining = True

    def stop(self) -> None:
        """After the last request: refuse new work, finish what is queued, end the threads."""
        self._draining = True
        self.engine.stop(self.settings.shutdown_grace_s)
        for pool in (self._decoders, self._resizers):
            if pool is not None:
                pool.shutdown(wait=False)
