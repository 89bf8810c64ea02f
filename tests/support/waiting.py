"""Bounded waits on observable state, instead of sleeping for a guessed time.

A test that sleeps "long enough" is slow when the machine is idle and wrong when it is busy; a test that
polls without a bound hangs the suite when the behaviour regresses. These poll a condition and fail with
a message naming what never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 60.0
_POLL_S = 0.01


def wait_for(produce: Callable[[], T], done: Callable[[T], bool], what: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """Call ``produce`` until ``done`` holds for its value, and return that value; TimeoutError after
    ``timeout_s`` seconds (with the last value seen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = produce()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {what}; last seen: {value!r}")
        time.sleep(_POLL_S)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    wait_for(condition, bool, what, timeout_s)
