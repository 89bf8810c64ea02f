"""Keep the server's memory from creeping up under load (glibc only; elsewhere nothing changes).

Request threads decode large images into Pillow blocks of up to 16 MB. With glibc's defaults each thread
may get its own malloc arena (up to 8 per core), and the mmap threshold rises after the first large free,
so later large blocks come from those arenas and are kept after use. Two arenas and a fixed 1 MiB mmap
threshold hand large blocks back to the system when freed: measured here, the peak RSS with four
concurrent 12-MP JPEGs fell from 1025 MiB to 771 MiB at the same throughput (docs/performance.md).
The environment variables MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_, when set, win.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

# mallopt() parameters, from glibc's malloc.h.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 1 << 20


def tune_malloc() -> dict[str, int]:
    """Apply the settings above (in this process and the workers it forks); returns what was applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return {}
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc: musl and macOS have no mallopt
        return {}
    applied = {}
    for variable, parameter, value in (
        ("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
        ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
    ):
        if variable not in os.environ and mallopt(parameter, value) == 1:
            applied[variable] = value
    log.debug("malloc tuning: %s", applied)
    return applied
