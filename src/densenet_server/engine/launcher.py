"""Start and stop the engine process from the gunicorn master, importing nothing heavy here.

The master forks the HTTP fronts after this: it must not have imported onnxruntime, PyTorch or
prometheus_client (whose multiprocess mode is chosen at import). So the engine is a new interpreter (no
thread pool, nor CUDA, crosses a fork) started with the same program as the master (`densenet-server
engine`), and its code is imported only there. Its settings come from a file in the server's private run
folder; its lifetime from a pipe that only the master holds open.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from .paths import RunPaths

log = logging.getLogger(__name__)

# The exit status of an engine whose model could not load; the master halts with it (gunicorn's
# "worker failed to boot" status, so that supervisors do not restart in a loop).
LOAD_FAILED = 3
ENGINE_COMMAND = "engine"


@dataclass
class EngineProcess:
    """The master's handle on the engine process."""

    process: subprocess.Popen[bytes]
    control_fd: int  # the write end of the control pipe; the engine stops when it is closed

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def close_control(self) -> None:
        """Close this process's copy of the control pipe (the fronts do, right after the fork)."""
        try:
            os.close(self.control_fd)
        except OSError:
            pass  # already closed

    def stop(self, grace_s: float) -> int | None:
        """Let it finish its queue (at most ``grace_s``) and exit; kill it if it does not."""
        self.close_control()
        try:
            return self.process.wait(grace_s + 5.0)
        except subprocess.TimeoutExpired:
            log.error("the engine process did not exit within %.0f s; killing it", grace_s + 5.0)
            self.process.kill()
            return self.process.wait()


def program() -> list[str]:
    """How this interpreter was started (`densenet-server`, `python -m densenet_server.cli`, or a
    script that wraps it), so that the engine runs the same program."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return [sys.executable, "-m", spec.name.removesuffix(".__main__")]
    return [sys.executable, str(Path(getattr(main, "__file__", sys.argv[0])).resolve())]


def start_engine(settings: Settings, paths: RunPaths, layout: dict[str, Any]) -> EngineProcess:
    # Our own file in our own private folder: unpickling it runs nothing anyone else wrote.
    paths.engine_arguments.write_bytes(pickle.dumps((settings, layout)))
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, False)
    process = subprocess.Popen(
        [*program(), ENGINE_COMMAND, str(paths.folder), str(read_fd)], pass_fds=(read_fd,)
    )
    os.close(read_fd)
    return EngineProcess(process, write_fd)


def engine_main(run_folder: Path, control_fd: int) -> int:
    """The `engine` command: run the engine until the master closes the control pipe."""
    from .process import run_engine

    paths = RunPaths(run_folder)
    settings, layout = pickle.loads(paths.engine_arguments.read_bytes())
    with os.fdopen(control_fd, "rb") as control:
        return run_engine(settings, paths, layout, control)
