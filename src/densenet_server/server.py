"""Production serving: gunicorn with one threaded worker, which holds the one model of the process."""

from __future__ import annotations

import logging
import os
from types import FrameType
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from . import access_log
from .config import Settings
from .cpus import usable_cpus
from .malloc_tuning import tune_malloc

if TYPE_CHECKING:
    from flask import Flask

    from .service import InferenceService

log = logging.getLogger(__name__)

# gunicorn's arbiter halts (rather than respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = 3


def _exit_worker(exc: BaseException) -> None:
    logging.shutdown()
    os._exit(WORKER_BOOT_ERROR)


class DrainingWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, with the shutdown this server promises.

    On SIGTERM, gthread stops accepting, serves the connections it has accepted for at most
    graceful_timeout, and exits. This adds: /ready answers 503 from the first moment (so load balancers
    stop sending), the connections already waiting in the kernel's backlog are taken too and the listening
    socket closes as soon as accepting stops (later connections are refused at once, instead of waiting
    for a worker that will never take them), and after the last request the inference queue is drained
    and its thread ended.
    """

    app: GunicornServer

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.app.service is not None:
            self.app.service.begin_shutdown()
        super().handle_exit(sig, frame)

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                self._accept_backlog(listener)
                listener.close()

    def _accept_backlog(self, listener: Any) -> None:
        """Take every connection the kernel has completed but gthread has not yet accepted (under load it
        accepts one per loop): their clients have sent requests, which closing the socket would reset."""
        while True:
            connections = self.nr_conns
            self.accept(listener)  # gthread's own accept; it ignores "nothing left" (EAGAIN)
            if self.nr_conns == connections:
                return

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.app.service is not None:
                self.app.service.stop()


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The worker's own service, once load() has built it in the worker process.
        self.service: InferenceService | None = None
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options: dict[str, Any] = {
            "bind": f"{settings.host}:{settings.port}",
            # One process holds one model; threads overlap decoding with inference.
            "workers": 1,
            "worker_class": DrainingWorker,
            "threads": settings.http_threads,
            "graceful_timeout": settings.shutdown_grace_s,
            # The model loads in the worker after start-up; gunicorn's heartbeat must not kill it meanwhile.
            "timeout": 120,
            "loglevel": settings.log_level,
            # The app writes its own access lines (access_log.py): gunicorn's cannot know the route,
            # the request id or the batch a request rode in.
            "accesslog": None,
            # Room for long (refused with a JSON 400 by the app) file names; gunicorn's default is 4094.
            "limit_request_line": 8190,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in the worker after the fork. The model's libraries are imported only here: onnxruntime
        # imported before a fork leaves the child unable to exit (it hangs or aborts), and no PyTorch
        # thread pool may cross a fork either.
        from .app import create_app
        from .service import InferenceService

        access_log.configure(self.settings.access_log)
        self.service = InferenceService(self.settings)
        app = create_app(self.settings, self.service)
        self.service.start(on_failure=_exit_worker)
        return app


def serve(settings: Settings) -> None:
    log.info(
        "serving %s on %s:%d (images from %s)",
        "densenet121",
        settings.host,
        settings.port,
        settings.images_dir.resolve(),
    )
    # What automatic sizing (--threads 0) is based on; scripts/test-container.sh checks this line.
    cpus = usable_cpus()
    log.info("usable CPUs: %d (%s)", cpus.count, cpus.source)
    warning = overload_warning(settings)
    if warning:
        log.warning("%s", warning)
    # Before gunicorn forks its worker and any thread starts, so that every allocation follows it.
    tune_malloc()
    GunicornServer(settings).run()


def overload_warning(settings: Settings) -> str | None:
    """Why overload would not be refused at once with these settings (None: it would).

    Each request waiting for the model holds an HTTP thread. With no more threads than the queue and a
    running batch can hold, all threads wait before the queue is full, and further requests wait for a
    thread inside gunicorn, unbounded, instead of getting 503."""
    can_wait = settings.max_queue_images + settings.max_batch_size
    if settings.http_threads > can_wait:
        return None
    return (
        f"--http-threads {settings.http_threads} is not above --max-queue-images + --max-batch-size "
        f"({can_wait}): under overload, requests will wait for a free thread instead of being refused with 503"
    )
