"""Dynamic batching: request threads queue preprocessed images, one worker runs them in batches.

Semantics (the ones TorchServe and BentoML users ask for):
- the batch limit counts images, not requests;
- the wait is counted from the arrival of the batch's first image, so a lone request never waits longer
  than ``max_wait_s`` before its forward pass starts;
- the worker waits only for images that are known to be on their way (``expecting()``: a request thread
  announces them before it decodes them; ``announce()``: the same for a caller in another process, whose
  requests the engine process submits with ``enqueue()``), so a request that arrives alone runs at once;
- the queue is bounded in images: a request that does not fit is refused at once (``QueueFull``), never
  parked;
- a caller that gives up (deadline) is dropped from the queue before it costs a forward pass, and so is
  a request whose deadline passes while it waits, even if nobody is waiting for it any more;
- with ``parallel_predicts`` (one per lane), that many forward passes run at once, each on its own
  lane; a pass that starts while no other runs uses ``predict`` (all the threads) instead. On a small
  CPU this beats one pass on all threads under load, because a pass on fewer threads is not held up by
  the request threads that decode images beside it (docs/performance.md).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
BatchObserver = Callable[[int, float], None]


class QueueFull(RuntimeError):
    """The queue holds as many images as allowed; the caller should retry later."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(TimeoutError):
    """The request's inference did not finish within its deadline."""


class BatcherStopped(RuntimeError):
    """The batcher is shutting down and takes no new work."""


@dataclass
class Pending:
    """One submitted request: its images, and the future that gets their logits."""

    images: np.ndarray
    arrived: float
    deadline: float  # time.monotonic() past which it is dropped rather than run
    future: Future[np.ndarray] = field(default_factory=Future)
    batch_size: int = 0  # set by the worker before the result: images in the forward pass


class Announcement:
    """Images a caller is preparing and will submit (see Batcher.announce)."""

    def __init__(self, count: int) -> None:
        self.count = count


@dataclass(frozen=True)
class Completed:
    logits: np.ndarray  # [n, classes], in the order of the submitted images
    batch_size: int  # images in the forward pass that computed them (this request's and others')


class Batcher:
    def __init__(
        self,
        predict: Predict,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_images: int,
        on_batch: BatchObserver | None = None,
        parallel_predicts: Sequence[Predict] = (),
        on_queue_change: Callable[[int], None] | None = None,
    ) -> None:
        self._predict = predict
        self._lanes = list(parallel_predicts)
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._max_queue_images = max_queue_images
        self._on_batch = on_batch
        # Called with the images now queued, under the queue's lock (so it must be quick): the engine
        # process publishes the depth to the HTTP fronts, which refuse work before decoding it.
        self._on_queue_change = on_queue_change
        self._queue: collections.deque[Pending] = collections.deque()
        self._queued_images = 0
        self._condition = threading.Condition()
        self._stopping = False
        # Images that callers are preparing and will submit; a request thread's own in _announced.
        self._incoming_images = 0
        self._announced = threading.local()
        self._last_batch_s = 0.05
        self._running_batches = 0
        self._workers = [
            threading.Thread(target=self._run, args=(lane,), name=f"batcher-{lane}", daemon=True)
            for lane in range(max(1, len(self._lanes)))
        ]
        for worker in self._workers:
            worker.start()

    @property
    def queued_images(self) -> int:
        return self._queued_images

    @property
    def incoming_images(self) -> int:
        """Images announced as on their way and not yet submitted or withdrawn."""
        return self._incoming_images

    @contextlib.contextmanager
    def expecting(self, count: int) -> Iterator[None]:
        """Announce that this thread is preparing ``count`` images for submission, so that the worker may
        wait for them (never past ``max_wait_s``). Submitting them, or leaving the block, withdraws it."""
        announcement = self.announce(count)
        previous = getattr(self._announced, "current", None)
        self._announced.current = announcement
        try:
            yield
        finally:
            self._announced.current = previous
            self.withdraw(announcement)

    def announce(self, count: int) -> Announcement:
        """Say that ``count`` images are on their way; enqueue(..., announcement) or withdraw() ends it."""
        announcement = Announcement(count)
        with self._condition:
            self._incoming_images += count
        return announcement

    def withdraw(self, announcement: Announcement | None) -> None:
        """The announced images are no longer on their way (submitted, refused, or given up)."""
        if announcement is None:
            return
        with self._condition:
            self._withdraw_locked(announcement)

    def _withdraw_locked(self, announcement: Announcement) -> None:
        if announcement.count:
            self._incoming_images -= announcement.count
            announcement.count = 0
            self._condition.notify_all()

    def submit(self, images: np.ndarray, timeout_s: float) -> np.ndarray:
        """Run ``images`` [n, ...] through the model; returns their logits [n, classes] in order."""
        return self.run(images, timeout_s).logits

    def run(self, images: np.ndarray, timeout_s: float) -> Completed:
        """Like submit(), and also says how large the forward pass was that computed them."""
        pending = self.enqueue(images, timeout_s, getattr(self._announced, "current", None))
        try:
            logits = pending.future.result(timeout=timeout_s)
        except FutureTimeout:
            # cancel() only succeeds while the worker has not started it: then it costs nothing more.
            pending.future.cancel()
            raise DeadlineExceeded("inference did not finish before the request's deadline") from None
        return Completed(logits, pending.batch_size)

    def ensure_room(self, count: int) -> None:
        """Raise QueueFull now if ``count`` images would not fit, so that a caller can refuse a request
        before spending time on decoding it. (submit() checks again: the queue may fill meanwhile.)"""
        with self._condition:
            self._refuse_if_full(count)

    def _refuse_if_full(self, count: int) -> None:
        if self._queued_images + count > self._max_queue_images:
            raise QueueFull(
                f"the inference queue is full ({self._queued_images} of {self._max_queue_images} "
                "images waiting); retry later",
                self._retry_after_s(),
            )

    def enqueue(
        self, images: np.ndarray, timeout_s: float, announcement: Announcement | None = None
    ) -> Pending:
        """Queue ``images`` [n, ...] without waiting: their Pending's future gets the logits [n, classes],
        or DeadlineExceeded if ``timeout_s`` passes before their forward pass starts. Withdraws
        ``announcement`` (these are the images it announced), also when the images are refused."""
        count = len(images)
        with self._condition:
            if announcement is not None:
                self._withdraw_locked(announcement)
            if timeout_s <= 0:
                raise DeadlineExceeded("the request's deadline passed before its inference could start")
            if self._stopping:
                raise BatcherStopped("the server is shutting down")
            self._refuse_if_full(count)
            now = time.monotonic()
            pending = Pending(images, now, now + timeout_s)
            self._queue.append(pending)
            self._queued_images += count
            self._queue_changed()
            self._condition.notify_all()
            return pending

    def _queue_changed(self) -> None:
        if self._on_queue_change is not None:
            self._on_queue_change(self._queued_images)

    @property
    def retry_after_s(self) -> int:
        """What a refused caller is told to wait: the queue's batches at the last batch's pace."""
        return self._retry_after_s()

    def _retry_after_s(self) -> int:
        batches_waiting = self._queued_images / self._max_batch_size
        return max(1, math.ceil(batches_waiting * self._last_batch_s))

    def stop(self, timeout_s: float | None = None) -> None:
        """Refuse new work, finish what is queued, then end the workers."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for worker in self._workers:
            worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _take_batch(self) -> tuple[list[Pending], bool] | None:
        """The next batch and whether it starts while no other forward pass runs (None: stopped)."""
        with self._condition:
            while not self._queue:
                if self._stopping:
                    return None
                self._condition.wait()
            flush_at = self._queue[0].arrived + self._max_wait_s
            while self._queued_images < self._max_batch_size and self._incoming_images and not self._stopping:
                remaining = flush_at - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            batch: list[Pending] = []
            taken = 0
            while self._queue:
                head = self._queue[0]
                # A request larger than the batch limit still runs, alone (in passes of the limit: _forward).
                if batch and taken + len(head.images) > self._max_batch_size:
                    break
                self._queue.popleft()
                self._queued_images -= len(head.images)
                if time.monotonic() > head.deadline:
                    if head.future.set_running_or_notify_cancel():
                        head.future.set_exception(
                            DeadlineExceeded("the request's deadline passed while it waited in the queue")
                        )
                    continue
                if head.future.set_running_or_notify_cancel():
                    batch.append(head)
                    taken += len(head.images)
            self._queue_changed()
            if batch:
                self._running_batches += 1
            return batch, self._running_batches == 1

    def _run(self, lane: int) -> None:
        while (taken := self._take_batch()) is not None:
            batch, alone = taken
            if not batch:
                continue
            try:
                self._run_batch(batch, self._predict if alone or not self._lanes else self._lanes[lane])
            finally:
                with self._condition:
                    self._running_batches -= 1

    def _forward(self, predict: Predict, images: np.ndarray) -> np.ndarray:
        """Logits of ``images``, in forward passes of at most max_batch_size images: a request larger than
        the limit runs in several, so that no pass, and no memory a backend keeps for the largest pass it
        has seen (ONNX Runtime's arena: about 60 MB per DenseNet-121 image), exceeds what the limit allows."""
        outputs = []
        for start in range(0, len(images), self._max_batch_size):
            chunk = images[start : start + self._max_batch_size]
            started = time.monotonic()
            outputs.append(predict(chunk))
            elapsed = time.monotonic() - started
            self._last_batch_s = elapsed
            if self._on_batch:
                self._on_batch(len(chunk), elapsed)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _run_batch(self, batch: list[Pending], predict: Predict) -> None:
        try:
            logits = self._forward(predict, np.concatenate([p.images for p in batch]))
        except Exception:
            if len(batch) == 1:
                self._fail(batch[0])
                return
            # Find the culprit rather than failing every request that happened to share its batch.
            for pending in batch:
                self._run_alone(pending, predict)
            return
        offset = 0
        for pending in batch:
            count = len(pending.images)
            pending.batch_size = min(len(logits), self._max_batch_size)
            pending.future.set_result(logits[offset : offset + count])
            offset += count

    def _run_alone(self, pending: Pending, predict: Predict) -> None:
        try:
            pending.batch_size = min(len(pending.images), self._max_batch_size)
            pending.future.set_result(self._forward(predict, pending.images))
        except Exception:
            self._fail(pending)

    @staticmethod
    def _fail(pending: Pending) -> None:
        log.exception("inference failed")
        pending.future.set_exception(RuntimeError("inference failed"))
