"""The real server as a subprocess on 127.0.0.1 (densenet_server.tooling.local_server), with requests helpers."""

from __future__ import annotations

from typing import Any

import requests

from densenet_server.tooling.local_server import LocalServer, free_port, server_command

__all__ = ["ServerProcess", "free_port", "server_command"]

# What the server's log holds only when a request went wrong in a way no status code shows.
_FAILURE_MARKERS = ("Traceback", "unhandled error", "inference failed")


class ServerProcess(LocalServer):
    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url(path), timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url(path), timeout=60, **kwargs)

    def stop(self, timeout_s: float = 30.0) -> int:
        return super().stop(timeout_s)

    def log_mark(self) -> int:
        """Where the log ends now; log_since() returns what is written after it."""
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        with self.log_path.open("rb") as stream:
            stream.seek(mark)
            return stream.read().decode(errors="replace")

    def assert_healthy_since(self, mark: int) -> None:
        """The process still runs, is ready, and logged no failure after ``mark``: so what the test sent
        since then did no harm that its answers would not show. A test calls it after its own requests,
        so that it holds whichever tests ran before."""
        assert self.process.poll() is None, f"the server exited with {self.process.returncode}:\n{self.log()}"
        ready = self.get("/ready")
        assert ready.status_code == 200, ready.text
        written = self.log_since(mark)
        assert not any(marker in written for marker in _FAILURE_MARKERS), written
