"""Production serving: one engine process per model owns it; gunicorn's threaded workers are the HTTP fronts.

The master (this process) starts the engine processes (one per model of --models-file, else one), then
gunicorn forks the fronts. Each front decodes and crops images in its request threads and sends the crops
to the chosen model's engine, which batches across all fronts (docs/architecture.md). The master watches
the engines: if one dies, the server stops, so that a supervisor restarts the whole; and it stops them only
after the fronts have drained.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from gunicorn.workers.gthread import ThreadWorker

from . import access_log
from .api_keys import ApiKeys
from .config import Settings
from .engine.launcher import LOAD_FAILED, EngineProcess, start_engine
from .engine.paths import RunPaths
from .engine.shared_state import SharedState
from .layout import Layout, choose_layout
from .malloc_tuning import tune_malloc
from .models_file import model_settings
from .tls import check_tls, read_pem, tls_files

if TYPE_CHECKING:
    from flask import Flask

    from .grpc_v2.server import GrpcServer
    from .served_models import ServedModels

log = logging.getLogger(__name__)

# Not imported from .metrics: the master must not import prometheus_client before setting this.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# gunicorn's arbiter halts (rather than respawning forever) when a worker exits with this code.
WORKER_BOOT_ERROR = LOAD_FAILED


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

    def init_signals(self) -> None:
        super().init_signals()
        # gunicorn resets SIGHUP in a worker to the default, which ends the process; here it re-reads the
        # API keys (the master forwards its SIGHUP, see EngineWatchingArbiter.handle_hup).
        signal.signal(signal.SIGHUP, self.handle_hup)
        signal.siginterrupt(signal.SIGHUP, False)  # requests in flight go on undisturbed

    def handle_hup(self, sig: int, frame: FrameType | None) -> None:
        self.app.api_keys.reload()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.app.service is not None:
            self.app.service.begin_shutdown()
        if self.app.grpc is not None:
            # gRPC takes no new calls from now on either; those accepted have the grace period.
            self.app.grpc.begin_stop(self.app.settings.shutdown_grace_s)
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
            if self.app.grpc is not None:
                self.app.grpc.stop(self.app.settings.shutdown_grace_s)  # its accepted calls answered first
            if self.app.service is not None:
                self.app.service.stop()


class EngineWatchingArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, which also stops the server when the engine process has died, and which rotates
    the API keys on SIGHUP instead of restarting the fronts."""

    def handle_hup(self) -> None:
        """gunicorn's own SIGHUP reloads its configuration and replaces every worker, which here would cut
        their keep-alive connections and re-open the engines' clients for nothing. Instead the master
        re-reads the keys file (so a front it forks later starts with the new keys) and passes the signal
        to each front, which re-reads the file itself."""
        if not self.app.api_keys.required:
            self.log.info("SIGHUP: no API keys file (--api-keys-file), nothing to reload")
            return
        self.app.api_keys.reload()
        self.kill_workers(signal.SIGHUP)

    def manage_workers(self) -> None:
        for name, engine in zip(self.app.model_names, self.app.engines):
            if not engine.alive and not self.app.stopping_engine:
                status = engine.exitcode
                reason = (
                    f"model {name} could not be loaded" if status == LOAD_FAILED
                    else f"the engine process of model {name} died ({status})"
                )
                raise HaltServer(reason, WORKER_BOOT_ERROR)
        super().manage_workers()


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        layout: Layout,
        paths: RunPaths,
        models: list[Settings],
        api_keys: ApiKeys | None = None,
    ) -> None:
        self.settings = settings
        # Read by the master at start-up; each front inherits them and re-reads the file on SIGHUP.
        self.api_keys = api_keys if api_keys is not None else ApiKeys(settings.api_keys_file)
        self.layout = layout
        self.paths = paths
        # Each model's settings and its engine's files, the default model first.
        self.models = [(each, paths.for_model(index)) for index, each in enumerate(models)]
        self.model_names = [each.served_name() for each in models]
        self.engines: list[EngineProcess] = []
        self.stopping_engine = False
        # The worker's own models, once load() has built them in the worker process, and its gRPC server.
        self.service: ServedModels | None = None
        self.grpc: GrpcServer | None = None
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options: dict[str, Any] = {
            "bind": f"{settings.host}:{settings.port}",
            "workers": self.layout.fronts,
            "worker_class": DrainingWorker,
            "threads": settings.http_threads,
            "graceful_timeout": settings.shutdown_grace_s,
            # A front waits for the engine's model (which may be exporting) in a background thread, so
            # its heartbeat runs meanwhile; this only catches a front that hangs.
            "timeout": 120,
            "loglevel": settings.log_level,
            # The app writes its own access lines (access_log.py): gunicorn's cannot know the route,
            # the request id or the batch a request rode in.
            "accesslog": None,
            # Room for long (refused with a JSON 400 by the app) file names; gunicorn's default is 4094.
            "limit_request_line": 8190,
            # gunicorn 27's control socket (one fixed path per user, shared by every server of that user)
            # would let any local process of the user reload or stop this one; the signals do what it does.
            "control_socket_disable": True,
            "on_starting": self._start_engine,
            "post_fork": self._forget_engine_control,
            "on_exit": self._stop_engine,
            "child_exit": _forget_front_metrics,
        }
        files = tls_files(settings)
        if files is not None:
            # gunicorn loads them for each connection's handshake (so a renewed certificate is picked up
            # without a restart); serve() has checked that they load.
            options["certfile"], options["keyfile"] = (str(path) for path in files)
        for key, value in options.items():
            self.cfg.set(key, value)

    def _start_engine(self, _: Arbiter) -> None:
        for model, paths in self.models:
            SharedState.create(paths.state, model.effective_max_queue_images())
            self.engines.append(start_engine(model, paths, self.layout.to_dict()))

    def _forget_engine_control(self, _: Arbiter, __: Any) -> None:
        """In a new front: only the master may keep the engines' control pipes open (see launcher)."""
        for engine in self.engines:
            engine.close_control()

    def _stop_engine(self, _: Arbiter) -> None:
        """After the fronts have exited (their accepted requests answered): drain the engines, clean up."""
        self.stopping_engine = True
        for engine in self.engines:
            engine.close_control()  # all at once: they drain side by side
        for engine in self.engines:
            engine.stop(self.settings.shutdown_grace_s)
        self.paths.remove()

    def load(self) -> Flask:
        # Called in the worker after the fork. The model's libraries are never imported here: they live
        # in the engine process.
        from .app import create_app
        from .engine.client import RemoteEngine
        from .metrics import Metrics
        from .pixel_budget import PixelBudget
        from .served_models import ServedModels
        from .service import InferenceService

        access_log.configure(self.settings.access_log)
        metrics = Metrics()
        budget = PixelBudget(self.layout.decoding_pixels_per_front)  # shared by this front's models
        self.service = ServedModels(
            [
                InferenceService(model, RemoteEngine(paths), metrics=metrics, pixel_budget=budget)
                for model, paths in self.models
            ]
        )
        app = create_app(self.settings, self.service, self.layout, self.api_keys)
        self.service.start(on_failure=_exit_worker)
        if self.settings.grpc_port:
            # Imported here, in the front: grpcio must not be loaded in the master before it forks.
            from .grpc_v2.server import start_grpc_server

            # The same keys object as the HTTP side's: this front's SIGHUP reload rotates both.
            self.grpc = start_grpc_server(
                self.service, self.settings.host, self.settings.grpc_port, self.api_keys, read_pem(self.settings)
            )
        return app

    def run(self) -> None:
        EngineWatchingArbiter(self).run()


def _forget_front_metrics(_: Arbiter, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def serve(settings: Settings) -> None:
    # Before anything starts: an unusable keys file or certificate stops the server here (ApiKeysError,
    # TlsError: exit status 2), never a front at its first request. Neither message quotes a key.
    api_keys = ApiKeys(settings.api_keys_file)
    check_tls(settings)
    settings, layout = choose_layout(settings)
    if api_keys.required:
        log.info("access control: %d API key(s) from %s; SIGHUP re-reads it", api_keys.count, settings.api_keys_file)
    else:
        log.warning("no --api-keys-file: every route is open to anyone who can reach the port")
    if settings.certfile is not None:
        log.info("TLS: HTTPS only, certificate %s", settings.certfile)
    models = model_settings(settings)
    log.info("usable CPUs: %d (%s)", layout.cpus.count, layout.cpus.source)
    log.info(
        "serving %s on %s:%d (images from %s)",
        ", ".join(model.served_name() for model in models),
        settings.host,
        settings.port,
        settings.images_dir.resolve(),
    )
    log.info("layout: %s", layout.describe())
    warning = overload_warning(settings)
    if warning:
        log.warning("%s", warning)
    paths = RunPaths.create()
    paths.metrics.mkdir()
    # Before any process of the server imports prometheus_client: they all count into this folder.
    os.environ[MULTIPROCESS_DIR_ENV] = str(paths.metrics)
    # Before gunicorn forks its workers and any thread starts, so that every allocation follows it.
    tune_malloc()
    master = os.getpid()
    try:
        GunicornServer(settings, layout, paths, models, api_keys).run()
    finally:
        # The fronts are forked inside run(), and leave through here too: only the master cleans up.
        if os.getpid() == master:
            paths.remove()


def overload_warning(settings: Settings) -> str | None:
    """Why overload would not be refused at once with these (concrete) settings (None: it would).

    Each request waiting for the model holds an HTTP thread. With no more threads than the queue and a
    running batch can hold, all threads wait before the queue is full, and further requests wait for a
    thread inside gunicorn, unbounded, instead of getting 503."""
    can_wait = settings.effective_max_queue_images() + settings.effective_max_batch_size()
    threads = settings.http_threads * max(1, settings.workers)
    if threads > can_wait:
        return None
    return (
        f"--workers x --http-threads ({threads}) is not above the queue plus a batch ({can_wait}): under "
        "overload, requests will wait for a free thread instead of being refused with 503"
    )
