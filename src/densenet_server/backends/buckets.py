"""Batch-size buckets for captured CUDA graphs: which shapes to capture, and how a batch is run on them.

A CUDA graph replays fixed shapes, so the CUDA backend captures one graph per bucket and runs a batch of n
images in the smallest bucket that holds n, its other rows zero (padding) and dropped from the output. The
buckets are the powers of two below the largest batch, and the largest batch itself: a padded pass costs
at most twice the work of an exact one, and the waste is cheap where it happens, since at small batches a
pass is dominated by its fixed cost (issue 9, H100: 2.1 ms at batch 1, 5.2 ms at batch 32). A batch larger
than the largest bucket runs as several passes. Pure logic, tested on the CPU; no torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """Rows [start, stop) of a batch, run in a pass of ``bucket`` rows (bucket - (stop - start) of padding)."""

    start: int
    stop: int
    bucket: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def padding(self) -> int:
        return self.bucket - self.rows


def bucket_sizes(max_batch_size: int) -> tuple[int, ...]:
    """(1, 2, 4, ..., max_batch_size): powers of two below it, and it."""
    if max_batch_size < 1:
        raise ValueError(f"the largest batch must be at least 1, not {max_batch_size}")
    sizes = []
    size = 1
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    sizes.append(max_batch_size)
    return tuple(sizes)


def choose_bucket(rows: int, buckets: Sequence[int]) -> int:
    """The smallest bucket holding ``rows`` (buckets ascending)."""
    if rows < 1:
        raise ValueError(f"a batch has at least one row, not {rows}")
    for bucket in buckets:
        if bucket >= rows:
            return bucket
    raise ValueError(f"{rows} rows do not fit the largest bucket ({buckets[-1]}); split the batch (plan_chunks)")


def plan_chunks(rows: int, buckets: Sequence[int]) -> list[Chunk]:
    """How to run ``rows`` rows: full passes of the largest bucket, then the rest in its own bucket."""
    if rows < 1:
        raise ValueError(f"a batch has at least one row, not {rows}")
    largest = buckets[-1]
    chunks = []
    for start in range(0, rows, largest):
        stop = min(rows, start + largest)
        chunks.append(Chunk(start, stop, choose_bucket(stop - start, buckets)))
    return chunks
