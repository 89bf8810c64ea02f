"""The dynamic batcher, driven deterministically: forward passes wait at a gate that the test opens, and
the test waits (bounded) for the batcher's observable state, such as queued_images, instead of sleeping.

A behaviour that regresses makes a test fail: a request that should run at once but waits gets
DeadlineExceeded from a deadline far beyond the test's normal run time, never a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
from support.waiting import wait_until

from densenet_server.batching import Batcher, BatcherStopped, Completed, DeadlineExceeded, QueueFull

# A deadline no passing test comes near: reaching it means the batcher waited where it must not.
DEADLINE_S = 30.0
# Longer than any test runs: waiting this long would show as DeadlineExceeded.
FOREVER_S = 3600.0


class RecordingModel:
    """Returns each row's first value times (1, 2, 3) as its logits, and records what it was given. With a
    ``gate``, every forward pass waits until the test sets it, so what queues meanwhile is known."""

    def __init__(self, fail_on: float | None = None, gate: threading.Event | None = None) -> None:
        self.batch_sizes: list[int] = []
        self.values: list[float] = []  # each row's first value, in the order the model saw them
        self.fail_on = fail_on
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.started.set()
        if self.gate is not None and not self.gate.wait(DEADLINE_S):
            raise TimeoutError("the test never opened the gate")
        self.batch_sizes.append(len(batch))
        self.values.extend(float(v) for v in batch[:, 0])
        if self.fail_on is not None and np.any(batch[:, 0] == self.fail_on):
            raise ValueError("poisoned input")
        return np.repeat(batch[:, :1], 3, axis=1) * np.array([1.0, 2.0, 3.0])


def rows(*values: float) -> np.ndarray:
    return np.array([[v, 0.0] for v in values])


@contextmanager
def batcher_of(predict: RecordingModel, **options: object) -> Iterator[Batcher]:
    batcher = Batcher(predict, **{"max_batch_size": 8, "max_wait_s": 0.0, "max_queue_images": 64, **options})  # type: ignore[arg-type]
    try:
        yield batcher
    finally:
        if predict.gate is not None:
            predict.gate.set()  # nothing stays stuck at the gate, whatever the test did
        batcher.stop(timeout_s=DEADLINE_S)


def test_requests_that_queue_during_a_pass_share_the_next_ones_and_get_their_own_rows() -> None:
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    with batcher_of(model, max_batch_size=8) as batcher, ThreadPoolExecutor(32) as pool:
        first = pool.submit(batcher.submit, rows(0.0), DEADLINE_S)
        assert model.started.wait(DEADLINE_S)  # the worker holds the first request at the gate
        rest = [pool.submit(batcher.submit, rows(float(i)), DEADLINE_S) for i in range(1, 32)]
        wait_until(lambda: batcher.queued_images == 31, "31 requests queued behind the first")
        gate.set()
        results = [first.result(DEADLINE_S)] + [future.result(DEADLINE_S) for future in rest]
    for i, logits in enumerate(results):
        np.testing.assert_array_equal(logits, [[i, 2 * i, 3 * i]])
    assert model.batch_sizes == [1, 8, 8, 8, 7]  # never more than the limit, and no smaller than need be


def test_multi_image_request_keeps_its_order() -> None:
    with batcher_of(RecordingModel(), max_batch_size=4) as batcher:
        np.testing.assert_array_equal(batcher.submit(rows(1, 2, 3), timeout_s=DEADLINE_S)[:, 0], [1, 2, 3])


def test_request_larger_than_the_batch_limit_runs_alone_in_passes_of_the_limit() -> None:
    model = RecordingModel()
    observed: list[int] = []
    with batcher_of(model, max_batch_size=2, on_batch=lambda size, _: observed.append(size)) as batcher:
        np.testing.assert_array_equal(batcher.submit(rows(1, 2, 3, 4, 5), timeout_s=DEADLINE_S)[:, 0], [1, 2, 3, 4, 5])
    assert model.batch_sizes == [2, 2, 1]  # never a pass above the limit: a backend's memory follows its largest
    assert observed == [2, 2, 1]


def test_a_request_with_nothing_else_on_its_way_runs_at_once() -> None:
    # It would wait up to an hour for more images if it waited at all: the deadline would end it first.
    with batcher_of(RecordingModel(), max_batch_size=64, max_wait_s=FOREVER_S) as batcher:
        with batcher.expecting(1):
            np.testing.assert_array_equal(batcher.submit(rows(1), timeout_s=DEADLINE_S)[:, 0], [1])


@contextmanager
def announced_elsewhere(batcher: Batcher, count: int) -> Iterator[None]:
    """Another thread announces ``count`` images and holds them back (a slow decoder) for the block."""
    announced, release = threading.Event(), threading.Event()

    def slow_decoder() -> None:
        with batcher.expecting(count):
            announced.set()
            release.wait(DEADLINE_S)

    thread = threading.Thread(target=slow_decoder)
    thread.start()
    try:
        assert announced.wait(DEADLINE_S)
        yield
        assert not release.is_set()  # the announced images were still on their way throughout
    finally:
        release.set()
        thread.join(DEADLINE_S)


def test_a_partial_batch_is_flushed_after_the_wait_when_announced_images_do_not_come() -> None:
    max_wait_s = 0.2
    with batcher_of(RecordingModel(), max_batch_size=64, max_wait_s=max_wait_s) as batcher:
        with announced_elsewhere(batcher, 1):
            started = time.monotonic()
            # Returns while the announced image is still on its way (a batcher that waited for it would
            # reach the deadline instead)...
            batcher.submit(rows(1), timeout_s=DEADLINE_S)
            # ...but only after waiting for it the whole max_wait_s. (A lower bound on elapsed time cannot
            # flake: a busy machine only makes it longer.)
            assert time.monotonic() - started >= max_wait_s


def test_announced_images_that_arrive_within_the_wait_share_the_batch() -> None:
    model = RecordingModel()
    with batcher_of(model, max_batch_size=64, max_wait_s=FOREVER_S) as batcher:
        announced = threading.Event()

        def late_request() -> np.ndarray:
            with batcher.expecting(2):
                announced.set()
                # Still "decoding" while the first request is queued, and waited for.
                wait_until(lambda: batcher.queued_images == 1, "the first request to be queued")
                return batcher.submit(rows(2, 3), timeout_s=DEADLINE_S)

        with ThreadPoolExecutor(1) as pool:
            late = pool.submit(late_request)
            assert announced.wait(DEADLINE_S)
            first = batcher.submit(rows(1), timeout_s=DEADLINE_S)
            np.testing.assert_array_equal(late.result(DEADLINE_S)[:, 0], [2, 3])
    np.testing.assert_array_equal(first[:, 0], [1])
    assert model.batch_sizes == [3]


def test_full_batch_does_not_wait_for_announced_images() -> None:
    model = RecordingModel()
    with batcher_of(model, max_batch_size=2, max_wait_s=FOREVER_S) as batcher:
        with announced_elsewhere(batcher, 1):
            batcher.submit(rows(1, 2), timeout_s=DEADLINE_S)
    assert model.batch_sizes == [2]


def test_failing_request_does_not_poison_its_batch_mates() -> None:
    gate = threading.Event()
    model = RecordingModel(fail_on=13.0, gate=gate)

    def submit(value: float) -> object:
        try:
            return batcher.submit(rows(value), timeout_s=DEADLINE_S)[0, 0]
        except RuntimeError as exc:
            return exc

    with batcher_of(model, max_batch_size=8) as batcher, ThreadPoolExecutor(5) as pool:
        blocker = pool.submit(submit, 0.0)
        assert model.started.wait(DEADLINE_S)
        batch_mates = [pool.submit(submit, value) for value in (1.0, 2.0, 13.0, 4.0)]
        wait_until(lambda: batcher.queued_images == 4, "four requests queued for one batch")
        gate.set()
        results = [future.result(DEADLINE_S) for future in batch_mates]
        assert blocker.result(DEADLINE_S) == 0.0
    assert isinstance(results[2], RuntimeError)
    assert results[:2] + results[3:] == [1.0, 2.0, 4.0]
    # The shared batch failed, then each of its requests ran alone to find the culprit.
    assert model.batch_sizes == [1, 4, 1, 1, 1, 1]


def test_queue_bound_refuses_at_once_with_a_retry_hint() -> None:
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    with batcher_of(model, max_batch_size=2, max_queue_images=2) as batcher, ThreadPoolExecutor(2) as pool:
        busy = pool.submit(batcher.submit, rows(1, 2), DEADLINE_S)  # occupies the worker
        assert model.started.wait(DEADLINE_S)
        batcher.ensure_room(2)  # the queue itself is still empty
        queued = pool.submit(batcher.submit, rows(3, 4), DEADLINE_S)  # fills the queue
        wait_until(lambda: batcher.queued_images == 2, "the queue to fill")
        with pytest.raises(QueueFull):
            batcher.ensure_room(1)  # what a caller checks before decoding
        # Refused, not parked: the gate stays closed, so a parked request could only end by its deadline.
        with pytest.raises(QueueFull) as refused:
            batcher.submit(rows(5), timeout_s=DEADLINE_S)
        assert refused.value.retry_after_s >= 1
        assert batcher.queued_images == 2
        gate.set()
        assert len(busy.result(DEADLINE_S)) == 2 and len(queued.result(DEADLINE_S)) == 2


def test_deadline_gives_up_and_drops_the_request() -> None:
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    with batcher_of(model, max_batch_size=1) as batcher, ThreadPoolExecutor(1) as pool:
        busy = pool.submit(batcher.submit, rows(1), DEADLINE_S)
        assert model.started.wait(DEADLINE_S)
        with pytest.raises(DeadlineExceeded):
            batcher.submit(rows(2), timeout_s=0.1)  # the gate is closed: it cannot finish in time
        gate.set()
        busy.result(DEADLINE_S)
        # A later request runs after the worker has passed the abandoned one in the queue (first in,
        # first out), so by its answer the abandoned request has been dropped or run: it must be dropped.
        batcher.submit(rows(3), timeout_s=DEADLINE_S)
    assert model.values == [1.0, 3.0]


def test_stop_finishes_queued_work_and_refuses_new_work() -> None:
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    with batcher_of(model, max_batch_size=1) as batcher, ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.submit, rows(0.0), DEADLINE_S)]
        assert model.started.wait(DEADLINE_S)
        for value in (1.0, 2.0):
            futures.append(pool.submit(batcher.submit, rows(value), DEADLINE_S))
            wait_until(lambda value=value: batcher.queued_images == value, f"request {value} to be queued")
        batcher.stop(timeout_s=0)  # refuse new work now; the workers are still held at the gate
        with pytest.raises(BatcherStopped):
            batcher.submit(rows(9), timeout_s=DEADLINE_S)
        gate.set()
        assert [f.result(DEADLINE_S)[0, 0] for f in futures] == [0.0, 1.0, 2.0]
    assert model.values == [0.0, 1.0, 2.0]


def test_parallel_lanes_run_batches_at_once_and_a_lone_batch_uses_every_thread() -> None:
    solo_started, lane_started = threading.Event(), threading.Event()
    calls: list[str] = []

    def solo(batch: np.ndarray) -> np.ndarray:
        calls.append("solo")
        solo_started.set()
        # Finishes only once a second batch has started beside it: fails if batches ran one by one.
        if not lane_started.wait(DEADLINE_S):
            raise RuntimeError("no second forward pass ran in parallel")
        return RecordingModel()(batch)

    def lane(batch: np.ndarray) -> np.ndarray:
        calls.append("lane")
        lane_started.set()
        return RecordingModel()(batch)

    batcher = Batcher(solo, max_batch_size=1, max_wait_s=0.0, max_queue_images=8, parallel_predicts=[lane, lane])
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.submit, rows(1), DEADLINE_S)
        assert solo_started.wait(DEADLINE_S)  # nothing else ran: the all-threads predict
        second = pool.submit(batcher.submit, rows(2), DEADLINE_S)
        np.testing.assert_array_equal(second.result(DEADLINE_S)[:, 0], [2])
        np.testing.assert_array_equal(first.result(DEADLINE_S)[:, 0], [1])
    assert calls == ["solo", "lane"]
    batcher.stop()


def test_each_lane_takes_a_batch_while_the_other_runs() -> None:
    solo_gate, lane_gate = threading.Event(), threading.Event()
    solo = RecordingModel(gate=solo_gate)
    lanes = [RecordingModel(gate=lane_gate), RecordingModel(gate=lane_gate)]
    batcher = Batcher(solo, max_batch_size=1, max_wait_s=0.0, max_queue_images=8, parallel_predicts=lanes)
    try:
        with ThreadPoolExecutor(3) as pool:
            alone = pool.submit(batcher.submit, rows(1), DEADLINE_S)
            assert solo.started.wait(DEADLINE_S)  # one worker, alone: all threads
            beside = pool.submit(batcher.submit, rows(2), DEADLINE_S)
            wait_until(lambda: any(lane.started.is_set() for lane in lanes), "the second worker on its lane")
            solo_gate.set()
            np.testing.assert_array_equal(alone.result(DEADLINE_S)[:, 0], [1])
            # The first worker is free again while the second still runs: it takes the next batch on its lane.
            third = pool.submit(batcher.submit, rows(3), DEADLINE_S)
            wait_until(lambda: all(lane.started.is_set() for lane in lanes), "the first worker on its lane")
            lane_gate.set()
            np.testing.assert_array_equal(beside.result(DEADLINE_S)[:, 0], [2])
            np.testing.assert_array_equal(third.result(DEADLINE_S)[:, 0], [3])
        assert solo.values == [1.0] and sorted(lane.values[0] for lane in lanes) == [2.0, 3.0]
    finally:
        solo_gate.set()
        lane_gate.set()
        batcher.stop(timeout_s=DEADLINE_S)


def test_lanes_serve_every_request_under_load() -> None:
    lanes = [RecordingModel(), RecordingModel()]
    solo = RecordingModel()
    batcher = Batcher(solo, max_batch_size=4, max_wait_s=0.01, max_queue_images=64, parallel_predicts=lanes)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: batcher.submit(rows(float(i)), timeout_s=DEADLINE_S), range(64)))
    for i, logits in enumerate(results):
        np.testing.assert_array_equal(logits, [[i, 2 * i, 3 * i]])
    assert sorted(v for model in (solo, *lanes) for v in model.values) == [float(i) for i in range(64)]
    batcher.stop()


def test_run_reports_the_size_of_the_forward_pass_it_rode_in() -> None:
    model = RecordingModel()
    both_announced = threading.Barrier(2)

    def run(values: tuple[float, ...]) -> Completed:
        with batcher.expecting(len(values)):
            both_announced.wait(DEADLINE_S)
            return batcher.run(rows(*values), timeout_s=DEADLINE_S)

    with batcher_of(model, max_batch_size=8, max_wait_s=FOREVER_S) as batcher, ThreadPoolExecutor(2) as pool:
        completed = list(pool.map(run, [(1.0,), (2.0, 3.0)]))
    assert model.batch_sizes == [3]  # the first waited for the announced second: one pass of 3 images
    assert [c.batch_size for c in completed] == [3, 3]
    np.testing.assert_array_equal(completed[1].logits[:, 0], [2.0, 3.0])


def test_a_request_whose_deadline_has_passed_is_refused_before_queueing() -> None:
    model = RecordingModel()
    with batcher_of(model, max_batch_size=1) as batcher:
        with pytest.raises(DeadlineExceeded, match="deadline passed before"):
            batcher.submit(rows(1), timeout_s=0)
        assert batcher.queued_images == 0
    assert model.batch_sizes == []
