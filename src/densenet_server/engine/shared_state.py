"""A few numbers the engine process publishes to every HTTP front through a shared memory map.

The fronts read them without a round trip: whether the model is ready (their /ready), and how full the
inference queue is, so that they refuse a request with 503 before spending time decoding it. The engine
is the only writer, and enforces the queue's bound itself; what the fronts read is advisory and at most a
moment old.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import threading
from pathlib import Path
from typing import Any

_LAYOUT = struct.Struct("<iiiii")  # ready, failed, queued images, max queue images, retry-after seconds
_SIZE = 4096


class SharedState:
    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("r+b") as stream:
            self._map = mmap.mmap(stream.fileno(), _SIZE)
        self._write_lock = threading.Lock()  # the engine's loader and batcher threads both write

    @classmethod
    def create(cls, path: Path, max_queue_images: int) -> SharedState:
        path.write_bytes(_LAYOUT.pack(0, 0, 0, max_queue_images, 1).ljust(_SIZE, b"\0"))
        return cls(path)

    def _read(self) -> tuple[int, int, int, int, int]:
        return _LAYOUT.unpack_from(self._map)  # type: ignore[return-value]

    def _write(self, **changes: int) -> None:
        with self._write_lock:
            ready, failed, queued, max_queue, retry_after = self._read()
            values = {"ready": ready, "failed": failed, "queued": queued, "max_queue": max_queue, "retry_after": retry_after}
            values.update(changes)
            _LAYOUT.pack_into(self._map, 0, *values.values())

    @property
    def ready(self) -> bool:
        return bool(self._read()[0])

    @property
    def failed(self) -> bool:
        return bool(self._read()[1])

    @property
    def queued_images(self) -> int:
        return self._read()[2]

    @property
    def max_queue_images(self) -> int:
        return self._read()[3]

    @property
    def retry_after_s(self) -> int:
        return self._read()[4]

    def set_ready(self) -> None:
        self._write(ready=1)

    def set_failed(self) -> None:
        self._write(ready=0, failed=1)

    def set_queue(self, queued_images: int, retry_after_s: int) -> None:
        self._write(queued=queued_images, retry_after=retry_after_s)


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(values))
    os.replace(partial, path)
