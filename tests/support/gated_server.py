"""Test double: the real server, except that every batched forward pass waits while a gate file exists.

Never shipped: gated_launcher.py wraps the Batcher's predict function from outside before running the
real `densenet-server`, so a test decides when the model answers. That fills the inference queue, or
holds requests in flight across a SIGTERM, without guessing at timings.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from prometheus_client.parser import text_string_to_metric_families

from densenet_server.tooling import local_server
from support import gated_launcher
from support.server_process import ServerProcess
from support.waiting import wait_until

__all__ = ["Gate", "gated_args", "metric", "refuses_connections", "start_gated_server", "wait_until"]

LAUNCHER = Path(gated_launcher.__file__)


class Gate:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "gate"
        # Touched by the stand-in each time a forward pass starts waiting at the gate.
        self.entered = folder / "gate.entered"

    def close(self) -> None:
        self.entered.unlink(missing_ok=True)
        self.path.touch()

    def open(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextmanager
    def closed(self) -> Iterator[None]:
        """Closed for the block, and open again however it ends (nothing stays stuck at the gate)."""
        self.close()
        try:
            yield
        finally:
            self.open()

    def wait_entered(self) -> None:
        wait_until(self.entered.exists, "a forward pass to reach the gate")

    def env(self) -> dict[str, str]:
        return {gated_launcher.GATE_ENV: str(self.path)}


def gated_args(checkpoint_path: Path, images_dir: Path, *extra: str) -> list[str]:
    """A server whose queue a test can fill one request at a time: one single-image pass at once, at once."""
    return ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--threads", "1",
            "--max-batch-size", "1", "--max-batch-wait-ms", "0", "--http-threads", "8", *extra]


def start_gated_server(args: Sequence[str], gate: Gate) -> ServerProcess:
    with mock.patch.object(local_server, "server_command", lambda: [sys.executable, str(LAUNCHER)]):
        return ServerProcess.start(args, env=gate.env())


def metric(server: ServerProcess, name: str, missing: float | None = None, **labels: str) -> float:
    """The sample's value; ``missing`` if the server shows no such sample (a labelled series appears with
    its first observation), KeyError when None."""
    for family in text_string_to_metric_families(server.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    if missing is not None:
        return missing
    raise KeyError(f"{name} {labels}")


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False
