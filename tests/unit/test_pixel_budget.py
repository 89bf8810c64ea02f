"""The decoding memory bound, and the request scope that carries each request's deadline."""

from __future__ import annotations

import threading
import time

import pytest

from densenet_server import request_scope
from densenet_server.batching import DeadlineExceeded
from densenet_server.pixel_budget import PixelBudget


def test_reservations_add_up_to_the_capacity_and_are_returned() -> None:
    budget = PixelBudget(100)
    with budget.reserve(60, timeout_s=1), budget.reserve(40, timeout_s=1):
        assert budget.in_use == 100
    assert budget.in_use == 0


def test_a_reservation_that_does_not_fit_waits_for_room() -> None:
    budget = PixelBudget(100)
    entered = threading.Event()

    def hold_then_release() -> None:
        with budget.reserve(80, timeout_s=1):
            entered.set()
            time.sleep(0.2)

    holder = threading.Thread(target=hold_then_release)
    holder.start()
    entered.wait(5)
    with budget.reserve(50, timeout_s=30):  # fits only once the holder is done
        assert budget.in_use == 50
    holder.join()


def test_no_room_before_the_deadline_is_a_deadline_error() -> None:
    budget = PixelBudget(100)
    with budget.reserve(100, timeout_s=1):
        with pytest.raises(DeadlineExceeded, match="max-decoding-pixels 100"):
            with budget.reserve(1, timeout_s=0.05):
                pass
    assert budget.in_use == 0


def test_an_image_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(100)
    with budget.reserve(10_000, timeout_s=1):
        assert budget.in_use == 100


def test_the_request_scope_carries_the_deadline_and_is_gone_afterwards() -> None:
    assert request_scope.current() is None
    assert request_scope.remaining_s(default_s=7.0) == 7.0
    token = request_scope.open_scope(timeout_s=5.0)
    try:
        assert 4.0 < request_scope.remaining_s(default_s=7.0) <= 5.0
        request_scope.note_image_bytes(100)
        request_scope.note_batch(images=2, batch_size=6)
        scope = request_scope.current()
        assert scope is not None and (scope.image_bytes, scope.images, scope.batch_size) == (100, 2, 6)
    finally:
        request_scope.close_scope(token)
    assert request_scope.current() is None
    request_scope.note_image_bytes(1)  # outside a request: nothing to note, and no error
