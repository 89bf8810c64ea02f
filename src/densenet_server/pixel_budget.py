"""A bound on the pixels being decoded at once, across all request threads of the process.

An image's size on the wire says little about its memory: a 5 KB PNG can hold 40 million pixels, which
take about 160 MB while they are decoded, converted and resized. --max-image-pixels bounds one image; this
bounds their sum, so that a burst of such images waits its turn instead of exhausting the pod's memory.
Decoding is CPU-bound, so waiting costs no throughput: the CPUs were busy anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .batching import DeadlineExceeded


class PixelBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._in_use = 0
        self._condition = threading.Condition()

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def reserve(self, pixels: int, timeout_s: float) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the duration of the block; wait at most ``timeout_s`` for it."""
        # An image larger than the whole budget still runs, alone, rather than never.
        wanted = min(max(pixels, 0), self.capacity)
        with self._condition:
            if not self._condition.wait_for(lambda: self._in_use + wanted <= self.capacity, max(timeout_s, 0)):
                raise DeadlineExceeded(
                    "the request's deadline passed while its image waited for memory to be decoded in "
                    f"(--max-decoding-pixels {self.capacity}); retry later"
                )
            self._in_use += wanted
        try:
            yield
        finally:
            with self._condition:
                self._in_use -= wanted
                self._condition.notify_all()
