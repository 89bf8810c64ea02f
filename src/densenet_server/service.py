"""The model behind the HTTP routes: loads once, warms up, and serves requests through the batcher.

Routes call this and never touch the model; this knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import request_scope
from .batching import Batcher
from .classifier import Classifier, build_classifier
from .config import Settings
from .decoding import ImageError, image_pixels
from .metrics import Metrics
from .pixel_budget import PixelBudget
from .preprocess import INPUT_SHAPE

log = logging.getLogger(__name__)


class NotReady(RuntimeError):
    """The model is still loading."""


class InferenceService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ready = threading.Event()  # set once the model is loaded and warm
        self._draining = False  # set on SIGTERM: finish what was accepted, and say "not ready"
        self._pixel_budget = PixelBudget(settings.max_decoding_pixels)
        self._classifier: Classifier | None = None
        self._batcher: Batcher | None = None
        self.load_seconds: float | None = None
        self.metrics = Metrics()
        # Decodes the images of one multi-image request in parallel (Pillow releases the GIL).
        self._decoders: ThreadPoolExecutor | None = None

    @property
    def loaded(self) -> bool:
        """The model is loaded and warm, so requests can be served (also while draining)."""
        return self._ready.is_set()

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def ready(self) -> bool:
        """Whether new traffic should come here: loaded and not shutting down. Load plays no part: an
        overloaded server refuses the excess with 503 but stays ready (README, "What /ready means")."""
        return self.loaded and not self._draining

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None or not self.loaded:
            raise NotReady("the model is not loaded yet; retry once GET /ready answers 200")
        return self._classifier

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
        settings = self.settings
        classifier = build_classifier(settings)
        classifier.warm_up()
        backend = classifier.backend
        self._batcher = Batcher(
            backend.predict,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1000.0,
            max_queue_images=settings.max_queue_images,
            on_batch=self.metrics.observe_batch,
            parallel_predicts=backend.lane_predicts,
        )
        self.metrics.track_queue_depth(lambda batcher=self._batcher: batcher.queued_images)
        self._decoders = ThreadPoolExecutor(settings.effective_threads(), thread_name_prefix="decode")
        self._classifier = classifier
        self.load_seconds = time.monotonic() - started
        self.metrics.model_load_seconds.set(self.load_seconds)
        self.metrics.model_ready.set(1)
        self._ready.set()
        log.info("model ready in %.2f s (backend %s, %s)", self.load_seconds, backend.name, backend.precision)

    def classify(self, data: bytes, top_k: int) -> dict[str, Any]:
        classifier = self.classifier
        with self._expecting(1):
            probabilities = self.probabilities(self.prepare(data)[np.newaxis])
        return classifier.answer(probabilities[0], top_k)

    def _expecting(self, count: int) -> contextlib.AbstractContextManager[None]:
        """Tells the batcher these images are coming, so it may hold a batch for them (see batching)."""
        return self._batcher.expecting(count) if self._batcher is not None else contextlib.nullcontext()

    def classify_many(self, images: Sequence[bytes], top_k: int) -> list[dict[str, Any] | ImageError]:
        """Each image's answer, or the ImageError that refused it, in order.

        The readable images go to the batcher in one submit, so a multi-image request batches as a whole.
        """
        classifier = self.classifier
        with self._expecting(len(images)):
            prepared = self.prepare_many(images)
            readable = [pixels for pixels in prepared if isinstance(pixels, np.ndarray)]
            rows = iter(self.probabilities(np.stack(readable)) if readable else [])
        return [
            classifier.answer(next(rows), top_k) if isinstance(pixels, np.ndarray) else pixels
            for pixels in prepared
        ]

    def prepare_many(self, images: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        """Each image preprocessed, or the ImageError that refused it, in order; decoded in parallel."""

        def prepare_or_error(data: bytes) -> np.ndarray | ImageError:
            try:
                return self.prepare(data)
            except ImageError as exc:
                return exc

        if len(images) == 1 or self._decoders is None:
            return [prepare_or_error(data) for data in images]
        return list(self._decoders.map(prepare_or_error, images))

    def prepare(self, data: bytes) -> np.ndarray:
        """Encoded image -> float32 [3, 224, 224]; raises decoding.ImageError for bad input."""
        classifier = self.classifier
        if self._batcher is not None:
            # Overloaded: refuse now, before the decoding this image would cost is spent on it.
            self._batcher.ensure_room(1)
        budget_wait_s = request_scope.remaining_s(self.settings.request_timeout_s)
        with self._pixel_budget.reserve(image_pixels(data), budget_wait_s):
            started = time.monotonic()
            try:
                pixels = classifier.prepare(data)
            except ImageError as exc:
                self.metrics.image_errors.labels(type(exc).__name__).inc()
                raise
        self.metrics.stage_seconds.labels("preprocess").observe(time.monotonic() - started)
        return pixels

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed float32 pixels [N, 3, 224, 224] -> softmax probabilities [N, classes], batched."""
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != INPUT_SHAPE or len(pixels) == 0:
            raise ValueError(f"expected pixels of shape [N, {', '.join(map(str, INPUT_SHAPE))}], got {list(pixels.shape)}")
        classifier = self.classifier
        started = time.monotonic()
        logits = self._infer(np.ascontiguousarray(pixels, dtype=np.float32))
        self.metrics.stage_seconds.labels("batcher").observe(time.monotonic() - started)
        self.metrics.images_classified.inc(len(logits))
        return classifier.probabilities_from_logits(logits)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        assert self._batcher is not None
        completed = self._batcher.run(batch, request_scope.remaining_s(self.settings.request_timeout_s))
        request_scope.note_batch(len(batch), completed.batch_size)
        return completed.logits

    def begin_shutdown(self) -> None:
        """Report not ready, so that load balancers send new requests elsewhere, but keep serving the
        requests already accepted. Safe to call from a signal handler."""
        self._draining = True

    def stop(self) -> None:
        """After the last request: refuse new work, finish what is queued, end the threads."""
        self._draining = True
        if self._batcher is not None:
            self._batcher.stop(self.settings.shutdown_grace_s)
        if self._decoders is not None:
            self._decoders.shutdown(wait=False)
