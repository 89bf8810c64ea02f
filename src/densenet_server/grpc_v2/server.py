"""Starting and stopping the gRPC server of one front (or of a test, in-process).

`serve` starts one in each HTTP front (server.py, GunicornServer.load) once its models are built, on
--host:--grpc-port. Every front binds the same port with SO_REUSEPORT, and the kernel spreads connections
over them as it does HTTP ones. Its thread pool is as large as the front's HTTP threads and it takes no
more calls at once than it has threads: each call waiting for the model holds a thread, and a call beyond
them is refused at once (RESOURCE_EXHAUSTED) rather than queued without bound inside gRPC, where no
deadline of ours would run (the reasoning of --http-threads, README "Overload and deadlines").

On SIGTERM the front calls begin_stop(): new calls are refused from then on, and those accepted have
--shutdown-grace-s to be answered; then wait_stopped(), before the models stop.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import grpc
from tritonclient.grpc import service_pb2_grpc

from ..api_keys import ApiKeys
from ..served_models import ServedModels
from .calls import CallHandling
from .servicer import InferenceServicer

if TYPE_CHECKING:
    from ..tls import PemPair

log = logging.getLogger(__name__)


class GrpcServer:
    def __init__(self, server: grpc.Server, port: int) -> None:
        self._server = server
        self.port = port  # the bound port (the one asked for, or the one chosen for 0)
        self._stopped: threading.Event | None = None

    def begin_stop(self, grace_s: float) -> None:
        """Refuse new calls from now on; the calls accepted get ``grace_s`` seconds to be answered, then are
        cancelled. Returns at once (safe in a signal handler); calling it again changes nothing."""
        if self._stopped is None:
            self._stopped = self._server.stop(grace_s)

    def stop(self, grace_s: float) -> None:
        """begin_stop(), then wait until the accepted calls are answered (at most ``grace_s`` seconds)."""
        self.begin_stop(grace_s)
        assert self._stopped is not None
        self._stopped.wait()


def start_grpc_server(
    models: ServedModels,
    host: str,
    port: int,
    api_keys: ApiKeys | None = None,
    tls: PemPair | None = None,
) -> GrpcServer:
    """Serve ``models`` over gRPC on ``host``:``port`` (0: a free port, see GrpcServer.port), with the
    server's limits from the default model's settings, as the HTTP side; with ``tls``, over TLS only.
    RuntimeError if it cannot bind."""
    settings = models.default.settings
    threads = settings.http_threads
    server = grpc.server(
        ThreadPoolExecutor(threads, thread_name_prefix="grpc"),
        interceptors=[CallHandling(models.metrics, settings.request_timeout_s, api_keys)],
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.so_reuseport", 1),
        ],
        maximum_concurrent_rpcs=threads,
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(models), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        credentials = grpc.ssl_server_credentials([(tls.private_key, tls.certificate_chain)])
        bound = server.add_secure_port(address, credentials)
    server.start()
    log.info("gRPC (Open Inference Protocol v2) on %s:%d%s", host, bound, " with TLS" if tls else "")
    return GrpcServer(server, bound)
