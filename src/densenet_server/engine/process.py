"""The engine process: owns the model and its device, and batches the requests of every HTTP front.

It ignores SIGTERM and SIGINT: the gunicorn master stops it, by closing the control pipe, once every
front has drained, so that the requests the fronts accepted are answered first. If the master dies, the
pipe closes too, and the engine does not outlive it. (launcher.py starts it.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future
from multiprocessing.connection import Connection, Listener
from typing import Any, BinaryIO

import numpy as np

from ..batching import BatcherStopped, DeadlineExceeded, Pending, QueueFull
from ..config import Settings
from ..malloc_tuning import tune_malloc
from ..metrics import Metrics
from . import protocol
from .base import DeviceDecodeRefused, as_pixels
from .local import LocalEngine
from .paths import RunPaths
from .launcher import LOAD_FAILED
from .shared_state import SharedState, write_json

log = logging.getLogger(__name__)

_LISTEN_BACKLOG = 256


def run_engine(settings: Settings, paths: RunPaths, layout: dict[str, Any], control: BinaryIO) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    for handler in root.handlers:  # the same log as the master's, with the engine's lines marked
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [engine]: %(message)s"))
    tune_malloc()
    state = SharedState(paths.state)
    engine = LocalEngine(settings, Metrics().for_model(settings.served_name()), on_queue_change=lambda queued: _publish_queue(state, engine, queued))
    server = EngineServer(engine, paths)
    try:
        engine.load()
    except BaseException as exc:  # the server is useless without its model: say why, and stop it
        log.critical("model loading failed: %s", exc)
        state.set_failed()
        return LOAD_FAILED
    write_json(paths.model_info, {"model": engine.info.to_dict(), "layout": layout, "load_seconds": engine.load_seconds})
    state.set_ready()
    # The master never writes: read() returns once it has closed the pipe (or died).
    control.read()
    log.info("stopping: finishing the queued requests")
    engine.stop(settings.shutdown_grace_s)
    server.close()
    return 0


def _publish_queue(state: SharedState, engine: LocalEngine, queued: int) -> None:
    state.set_queue(queued, engine.batcher.retry_after_s)


class EngineServer:
    """Accepts the fronts' connections on the Unix socket and serves each in a thread of its own."""

    def __init__(self, engine: LocalEngine, paths: RunPaths) -> None:
        self._engine = engine
        self._listener = Listener(str(paths.socket), family="AF_UNIX", backlog=_LISTEN_BACKLOG)
        self._closed = False
        self._fronts: list[FrontConnection] = []
        threading.Thread(target=self._accept, name="engine-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection = self._listener.accept()
            except OSError:
                return  # closed
            front = FrontConnection(connection, self._engine)
            self._fronts.append(front)
            front.start()

    def close(self) -> None:
        """Stop accepting, and hang up on every front (which then answer 503 until the server is gone)."""
        self._closed = True
        self._listener.close()
        for front in self._fronts:
            front.hang_up()


class FrontConnection:
    """One front's requests: read in order, answered as their batches complete."""

    def __init__(self, connection: Connection, engine: LocalEngine) -> None:
        self._connection = connection
        self._engine = engine
        self._send_lock = threading.Lock()
        self._announced: dict[int, Any] = {}
        self._pending: dict[int, Pending] = {}

    def start(self) -> None:
        threading.Thread(target=self._serve, name="engine-front", daemon=True).start()

    def _serve(self) -> None:
        try:
            while True:
                self._handle(protocol.decode(self._connection.recv_bytes()))
        except (EOFError, OSError):
            pass  # the front exited
        except protocol.ProtocolViolation as exc:
            log.error("closing a front's connection: %s", exc)
        finally:
            self._abandon()

    def _handle(self, message: protocol.Message) -> None:
        if message.kind == protocol.Kind.EXPECT:
            if self._engine.loaded:
                self._announced[message.request_id] = self._engine.batcher.announce(message.count)
        elif message.kind == protocol.Kind.INFER:
            self._infer(message)
        elif message.kind == protocol.Kind.CANCEL:
            if self._engine.loaded:
                self._engine.batcher.withdraw(self._announced.pop(message.request_id, None))
            pending = self._pending.pop(message.request_id, None)
            if pending is not None:
                pending.future.cancel()
        else:
            raise protocol.ProtocolViolation(f"a front does not send {message.kind.name}")

    def _infer(self, message: protocol.Message) -> None:
        request_id = message.request_id
        announcement = self._announced.pop(request_id, None)
        if not self._engine.loaded:
            self._send(protocol.error(request_id, protocol.ErrorCode.NOT_READY, "the model is not loaded yet"))
            return
        batcher = self._engine.batcher
        try:
            rows, decoding_s = self._rows(message)
            # The front's deadline kept running while this thread decoded the request's JPEGs.
            pixels = as_pixels(rows, self._engine.info.record.preprocessing)
            pending = batcher.enqueue(pixels, message.seconds - decoding_s, announcement)
        except DeviceDecodeRefused as exc:
            self._send(protocol.error(request_id, protocol.ErrorCode.UNDECODED, str(exc)))
        except QueueFull as exc:
            self._send(protocol.error(request_id, protocol.ErrorCode.QUEUE_FULL, str(exc), exc.retry_after_s))
        except DeadlineExceeded as exc:
            self._send(protocol.error(request_id, protocol.ErrorCode.DEADLINE, str(exc)))
        except BatcherStopped as exc:
            self._send(protocol.error(request_id, protocol.ErrorCode.STOPPING, str(exc)))
        else:
            self._pending[request_id] = pending
            pending.future.add_done_callback(functools.partial(self._reply, request_id, pending))
        finally:
            batcher.withdraw(announcement)

    def _rows(self, message: protocol.Message) -> tuple[np.ndarray, float]:
        """The message's crops or pixels, and the seconds spent decoding them (JPEG rows only).

        JPEG rows are decoded here, in this front's reader thread, one request's images in one call to the
        device's decoder; a full queue refuses them first, as a front refuses before it decodes.
        """
        if not protocol.carries_jpegs(message):
            return protocol.rows_of(message, self._engine.info.record.preprocessing), 0.0
        datas = protocol.jpegs_of(message)
        self._engine.batcher.ensure_room(len(datas))
        started = time.monotonic()
        crops = self._engine.decode_jpegs(datas)
        return crops, time.monotonic() - started

    def _reply(self, request_id: int, pending: Pending, future: Future[np.ndarray]) -> None:
        self._pending.pop(request_id, None)
        if future.cancelled():
            return  # the front gave up on it and expects no answer
        failure = future.exception()
        if failure is None:
            self._send(protocol.result(request_id, future.result(), pending.batch_size))
        elif isinstance(failure, DeadlineExceeded):
            self._send(protocol.error(request_id, protocol.ErrorCode.DEADLINE, str(failure)))
        else:
            self._send(protocol.error(request_id, protocol.ErrorCode.FAILED, str(failure)))

    def _send(self, frame: bytes) -> None:
        try:
            with self._send_lock:
                self._connection.send_bytes(frame)
        except OSError:
            pass  # the front is gone; its requests are abandoned below

    def hang_up(self) -> None:
        # shutdown(), not close(): it wakes this connection's reader, blocked in recv, and the front's.
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._connection.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)

    def _abandon(self) -> None:
        """The front is gone: its queued requests need no forward pass, its announced images won't come."""
        for pending in list(self._pending.values()):
            pending.future.cancel()
        if self._engine.loaded:
            for announcement in self._announced.values():
                self._engine.batcher.withdraw(announcement)
        self._connection.close()
