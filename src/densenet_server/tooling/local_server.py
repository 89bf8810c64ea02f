"""Run `densenet-server serve` as a child process on 127.0.0.1, for the benchmark and the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command() -> list[str]:
    script = shutil.which("densenet-server", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "densenet_server.cli"]


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


GRPC_PORT_FLAG = "--grpc-port"


class LocalServer:
    def __init__(
        self, process: subprocess.Popen[bytes], port: int, log_path: Path, started: float, grpc_port: int | None = None
    ) -> None:
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        # Where its gRPC service answers ("host:port", as gRPC clients take it); None with --grpc-port 0.
        self.grpc_address = f"127.0.0.1:{grpc_port}" if grpc_port else None
        self.log_path = log_path
        self.started = started
        self.seconds_to_ready: float | None = None

    @classmethod
    def start(
        cls, args: Sequence[str], env: dict[str, str] | None = None, wait_ready: bool = True
    ) -> LocalServer:
        """Start the server with ``args`` (after `serve`) and, by default, wait until /ready answers 200.
        Its HTTP port is a free one, and so is its gRPC port unless ``args`` give --grpc-port."""
        port = free_port()
        arguments = list(args) if GRPC_PORT_FLAG in args else [GRPC_PORT_FLAG, str(free_port()), *args]
        grpc_port = int(arguments[arguments.index(GRPC_PORT_FLAG) + 1])
        log_path = Path(tempfile.mkstemp(prefix="densenet-server-", suffix=".log")[1])
        started = time.monotonic()
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*server_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *arguments],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        server = cls(process, port, log_path, started, grpc_port)
        if wait_ready:
            server.wait_ready()
        return server

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            if _answers_ready(self.url("/ready")):
                self.seconds_to_ready = time.monotonic() - self.started
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"server not ready within {timeout_s} s:\n{self.log()}")

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (a graceful stop), then SIGKILL if it has not exited within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
