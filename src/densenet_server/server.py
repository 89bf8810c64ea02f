"""Production serving: gunicorn with one threaded worker, which holds the one model of the process."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from .app import create_app
from .config import Settings
from .service import InferenceService

log = logging.getLogger(__name__)

# gunicorn's arbiter halts (rather than respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = 3


def _exit_worker(exc: BaseException) -> None:
    logging.shutdown()
    os._exit(WORKER_BOOT_ERROR)


def build_worker_app(settings: Settings) -> Flask:
    service = InferenceService(settings)
    app = create_app(settings, service)
    service.start(on_failure=_exit_worker)
    return app


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options: dict[str, Any] = {
            "bind": f"{settings.host}:{settings.port}",
            # One process holds one model; threads overlap decoding with inference.
            "workers": 1,
            "worker_class": "gthread",
            "threads": settings.http_threads,
            # The model loads in the worker after start-up; gunicorn's heartbeat must not kill it meanwhile.
            "timeout": 120,
            "loglevel": settings.log_level,
            "accesslog": None,
            # Room for long (refused with a JSON 400 by the app) file names; gunicorn's default is 4094.
            "limit_request_line": 8190,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in the worker after the fork, so no PyTorch thread pool ever crosses a fork.
        return build_worker_app(self.settings)


def serve(settings: Settings) -> None:
    log.info(
        "serving %s on %s:%d (images from %s)",
        "densenet121",
        settings.host,
        settings.port,
        settings.images_dir.resolve(),
    )
    GunicornServer(settings).run()
