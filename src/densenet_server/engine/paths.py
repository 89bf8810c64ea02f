"""The files through which `serve`'s processes find each other: one private folder per server."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    folder: Path

    @classmethod
    def create(cls) -> RunPaths:
        # Private (mode 0700): whoever can reach the socket can run the model.
        return cls(Path(tempfile.mkdtemp(prefix="densenet-server-")))

    def for_model(self, index: int) -> RunPaths:
        """The files of the engine process of a server's ``index``-th model (one engine per model)."""
        folder = self.folder / f"model-{index}"
        folder.mkdir(mode=0o700, exist_ok=True)
        return RunPaths(folder)

    @property
    def socket(self) -> Path:
        return self.folder / "engine.sock"

    @property
    def state(self) -> Path:
        return self.folder / "state"

    @property
    def model_info(self) -> Path:
        return self.folder / "model.json"

    @property
    def engine_arguments(self) -> Path:
        return self.folder / "engine-arguments.pickle"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics"

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
