from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from densenet_server.batching import Batcher, Completed, BatcherStopped, DeadlineExceeded, QueueFull


class RecordingModel:
    """Returns each row's first value as its logits, and records the batch sizes it was given."""

    def __init__(self, delay_s: float = 0.0, fail_on: float | None = None) -> None:
        self.batch_sizes: list[int] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.started = threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.started.set()
        self.batch_sizes.append(len(batch))
        time.sleep(self.delay_s)
        if self.fail_on is not None and np.any(batch[:, 0] == self.fail_on):
            raise ValueError("poisoned input")
        return np.repeat(batch[:, :1], 3, axis=1) * np.array([1.0, 2.0, 3.0])


def rows(*values: float) -> np.ndarray:
    return np.array([[v, 0.0] for v in values])


def test_concurrent_requests_get_their_own_rows_in_few_batches() -> None:
    model = RecordingModel(delay_s=0.02)
    batcher = Batcher(model, max_batch_size=8, max_wait_s=0.05, max_queue_images=64)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: batcher.submit(rows(float(i)), timeout_s=10), range(32)))
    for i, logits in enumerate(results):
        np.testing.assert_array_equal(logits, [[i, 2 * i, 3 * i]])
    assert max(model.batch_sizes) > 1
    assert sum(model.batch_sizes) == 32
    assert all(size <= 8 for size in model.batch_sizes)
    batcher.stop()


def test_multi_image_request_keeps_its_order() -> None:
    batcher = Batcher(RecordingModel(), max_batch_size=4, max_wait_s=0.0, max_queue_images=16)
    np.testing.assert_array_equal(batcher.submit(rows(1, 2, 3), timeout_s=5)[:, 0], [1, 2, 3])
    batcher.stop()


def test_request_larger_than_the_batch_limit_runs_alone() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_batch_size=2, max_wait_s=0.0, max_queue_images=16)
    assert len(batcher.submit(rows(1, 2, 3, 4, 5), timeout_s=5)) == 5
    assert model.batch_sizes == [5]
    batcher.stop()


def test_a_request_with_nothing_else_on_its_way_runs_at_once() -> None:
    batcher = Batcher(RecordingModel(), max_batch_size=64, max_wait_s=30.0, max_queue_images=64)
    started = time.monotonic()
    with batcher.expecting(1):
        batcher.submit(rows(1), timeout_s=60)
    assert time.monotonic() - started < 10.0  # far below the 30 s it would wait for more
    batcher.stop()


def test_a_partial_batch_is_flushed_after_the_wait_when_announced_images_do_not_come() -> None:
    batcher = Batcher(RecordingModel(), max_batch_size=64, max_wait_s=0.2, max_queue_images=64)
    announced = threading.Event()
    release = threading.Event()

    def slow_decoder() -> None:
        with batcher.expecting(1):  # announces an image, then takes long to "decode" it
            announced.set()
            release.wait(10)

    thread = threading.Thread(target=slow_decoder)
    thread.start()
    announced.wait(5)
    started = time.monotonic()
    batcher.submit(rows(1), timeout_s=5)
    waited = time.monotonic() - started
    release.set()
    thread.join()
    assert 0.2 <= waited < 2.0
    batcher.stop()


def test_announced_images_that_arrive_within_the_wait_share_the_batch() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_batch_size=64, max_wait_s=5.0, max_queue_images=64)
    first_submitted = threading.Event()

    def late_request() -> np.ndarray:
        with batcher.expecting(2):
            first_submitted.wait(5)
            time.sleep(0.1)  # still "decoding" when the first request is queued
            return batcher.submit(rows(2, 3), timeout_s=10)

    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(late_request)
        while batcher._incoming_images != 2:  # the announcement is in before the first request queues
            time.sleep(0.01)
        first_submitted.set()
        first = batcher.submit(rows(1), timeout_s=10)
        np.testing.assert_array_equal(late.result()[:, 0], [2, 3])
    np.testing.assert_array_equal(first[:, 0], [1])
    assert model.batch_sizes == [3]
    batcher.stop()


def test_full_batch_does_not_wait() -> None:
    batcher = Batcher(RecordingModel(), max_batch_size=2, max_wait_s=30.0, max_queue_images=8)
    started = time.monotonic()
    batcher.submit(rows(1, 2), timeout_s=5)
    assert time.monotonic() - started < 5.0
    batcher.stop()


def test_failing_request_does_not_poison_its_batch_mates() -> None:
    model = RecordingModel(delay_s=0.01, fail_on=13.0)
    batcher = Batcher(model, max_batch_size=8, max_wait_s=0.1, max_queue_images=64)

    def submit(value: float) -> object:
        try:
            return batcher.submit(rows(value), timeout_s=10)[0, 0]
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(submit, [1.0, 2.0, 13.0, 4.0, 5.0, 6.0, 7.0, 8.0]))
    assert isinstance(results[2], RuntimeError)
    assert results[:2] + results[3:] == [1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    batcher.stop()


def test_queue_bound_refuses_at_once_with_a_retry_hint() -> None:
    model = RecordingModel(delay_s=0.5)
    batcher = Batcher(model, max_batch_size=2, max_wait_s=0.0, max_queue_images=2)
    pool = ThreadPoolExecutor(2)
    busy = pool.submit(batcher.submit, rows(1, 2), 10)  # occupies the worker
    model.started.wait(5)
    batcher.ensure_room(2)  # the queue itself is still empty
    queued = pool.submit(batcher.submit, rows(3, 4), 10)  # fills the queue
    time.sleep(0.05)
    with pytest.raises(QueueFull):
        batcher.ensure_room(1)  # what a caller checks before decoding
    started = time.monotonic()
    with pytest.raises(QueueFull) as refused:
        batcher.submit(rows(5), timeout_s=10)
    assert time.monotonic() - started < 0.1
    assert refused.value.retry_after_s >= 1
    assert len(busy.result()) == 2 and len(queued.result()) == 2
    batcher.stop()
    pool.shutdown()


def test_deadline_gives_up_and_drops_the_request() -> None:
    model = RecordingModel(delay_s=0.4)
    batcher = Batcher(model, max_batch_size=1, max_wait_s=0.0, max_queue_images=8)
    pool = ThreadPoolExecutor(1)
    busy = pool.submit(batcher.submit, rows(1), 10)
    model.started.wait(5)
    with pytest.raises(DeadlineExceeded):
        batcher.submit(rows(2), timeout_s=0.1)
    busy.result()
    time.sleep(0.1)
    assert model.batch_sizes == [1]  # the abandoned request never reached the model
    batcher.stop()
    pool.shutdown()


def test_stop_finishes_queued_work_and_refuses_new_work() -> None:
    model = RecordingModel(delay_s=0.1)
    batcher = Batcher(model, max_batch_size=1, max_wait_s=0.0, max_queue_images=8)
    pool = ThreadPoolExecutor(3)
    futures = [pool.submit(batcher.submit, rows(float(i)), 10) for i in range(3)]
    model.started.wait(5)
    batcher.stop(timeout_s=10)
    assert [f.result()[0, 0] for f in futures] == [0.0, 1.0, 2.0]
    with pytest.raises(BatcherStopped):
        batcher.submit(rows(9), timeout_s=1)
    pool.shutdown()


def test_parallel_lanes_run_batches_at_once_and_a_lone_batch_uses_every_thread() -> None:
    solo_started, lane_started = threading.Event(), threading.Event()
    calls: list[str] = []

    def solo(batch: np.ndarray) -> np.ndarray:
        calls.append("solo")
        solo_started.set()
        # Finishes only once a second batch has started beside it: fails if batches ran one by one.
        if not lane_started.wait(5):
            raise RuntimeError("no second forward pass ran in parallel")
        return RecordingModel()(batch)

    def lane(batch: np.ndarray) -> np.ndarray:
        calls.append("lane")
        lane_started.set()
        return RecordingModel()(batch)

    batcher = Batcher(solo, max_batch_size=1, max_wait_s=0.0, max_queue_images=8, parallel_predicts=[lane, lane])
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, rows(1), 10)
        assert solo_started.wait(5)  # nothing else ran: the all-threads predict
        second = pool.submit(batcher.submit, rows(2), 10)
        np.testing.assert_array_equal(second.result()[:, 0], [2])
        np.testing.assert_array_equal(first.result()[:, 0], [1])
    assert calls == ["solo", "lane"]
    batcher.stop()


def test_lanes_serve_every_request_under_load() -> None:
    lanes = [RecordingModel(delay_s=0.01), RecordingModel(delay_s=0.01)]
    solo = RecordingModel(delay_s=0.01)
    batcher = Batcher(solo, max_batch_size=4, max_wait_s=0.01, max_queue_images=64, parallel_predicts=lanes)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: batcher.submit(rows(float(i)), timeout_s=10), range(64)))
    for i, logits in enumerate(results):
        np.testing.assert_array_equal(logits, [[i, 2 * i, 3 * i]])
    assert sum(sum(model.batch_sizes) for model in (solo, *lanes)) == 64
    assert all(model.batch_sizes for model in lanes), "both lanes took work"
    batcher.stop()


def test_run_reports_the_size_of_the_forward_pass_it_rode_in() -> None:
    model = RecordingModel(delay_s=0.05)
    batcher = Batcher(model, max_batch_size=8, max_wait_s=5.0, max_queue_images=16)
    both_announced = threading.Barrier(2)

    def run(values: tuple[float, ...]) -> Completed:
        with batcher.expecting(len(values)):
            both_announced.wait(5)
            return batcher.run(rows(*values), timeout_s=10)

    with ThreadPoolExecutor(2) as pool:
        completed = list(pool.map(run, [(1.0,), (2.0, 3.0)]))
    assert model.batch_sizes == [3]  # the first waited for the announced second: one pass of 3 images
    assert [c.batch_size for c in completed] == [3, 3]
    np.testing.assert_array_equal(completed[1].logits[:, 0], [2.0, 3.0])
    batcher.stop()


def test_a_request_whose_deadline_has_passed_is_refused_before_queueing() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_batch_size=1, max_wait_s=0.0, max_queue_images=8)
    with pytest.raises(DeadlineExceeded, match="deadline passed before"):
        batcher.submit(rows(1), timeout_s=0)
    assert batcher.queued_images == 0 and model.batch_sizes == []
    batcher.stop()
