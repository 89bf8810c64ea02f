"""The real server as a subprocess on 127.0.0.1 (densenet_server.local_server), with requests helpers."""

from __future__ import annotations

from typing import Any

import requests

from densenet_server.local_server import LocalServer, free_port, server_command

__all__ = ["ServerProcess", "free_port", "server_command"]


class ServerProcess(LocalServer):
    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url(path), timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url(path), timeout=60, **kwargs)

    def stop(self, timeout_s: float = 30.0) -> int:
        return super().stop(timeout_s)
