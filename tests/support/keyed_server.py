"""The real server with API keys (conftest's keyed_server): its keys file, its key, and its fronts."""

from __future__ import annotations

from pathlib import Path

from support.server_process import ServerProcess
from support.waiting import wait_until

KEY = "e2e-first-key-7f3a9c01d2"
# Two fronts, so that a key rotation (SIGHUP) must reach more than one process.
FRONTS = 2


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def write_keys(path: Path, *keys: str) -> Path:
    path.write_text("".join(f"{key}\n" for key in keys))
    return path


def wait_every_front_ready(server: ServerProcess) -> None:
    """start() returns once one front answers ready; the others connect to the engine a moment later. The
    fronts take connections from one socket, so a run of 200s has been answered by all of them."""
    wait_until(lambda: all(server.get("/ready").status_code == 200 for _ in range(20)), "every front ready")
