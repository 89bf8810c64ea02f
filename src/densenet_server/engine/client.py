"""An HTTP front's side of the engine process: one connection, shared by all request threads."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Client, Connection

import numpy as np

from ..batching import BatcherStopped, Completed, DeadlineExceeded, QueueFull
from . import protocol
from .base import DeviceDecodeRefused, EngineUnavailable, ModelInfo, check_rows
from .paths import RunPaths
from .shared_state import SharedState

log = logging.getLogger(__name__)

_POLL_S = 0.05


class RemoteEngine:
    def __init__(self, paths: RunPaths) -> None:
        self._paths = paths
        self._state = SharedState(paths.state)
        self._connection: Connection | None = None
        self._send_lock = threading.Lock()
        self._waiting: dict[int, Future[protocol.Message]] = {}
        self._ids = itertools.count(1)
        self._announced = threading.local()  # the request id a thread announced images for
        self._info: ModelInfo | None = None
        self._closed = False

    @property
    def loaded(self) -> bool:
        return self._info is not None and not self._closed and self._state.ready

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise EngineUnavailable("the engine process is not connected yet")
        return self._info

    @property
    def queued_images(self) -> int:
        return self._state.queued_images

    def load(self) -> None:
        """Connect, then wait until the engine has loaded its model (it may still be exporting it)."""
        while not self._state.ready:
            if self._state.failed:
                raise EngineUnavailable("the engine process could not load the model (see its log)")
            time.sleep(_POLL_S)
        self._connection = Client(str(self._paths.socket), family="AF_UNIX")
        described = json.loads(self._paths.model_info.read_text())
        threading.Thread(target=self._read, name="engine-reader", daemon=True).start()
        self._info = ModelInfo.from_dict(described["model"])

    def ensure_room(self, count: int) -> None:
        queued, limit = self._state.queued_images, self._state.max_queue_images
        if queued + count > limit:
            raise QueueFull(
                f"the inference queue is full ({queued} of {limit} images waiting); retry later",
                max(1, self._state.retry_after_s),
            )

    @contextlib.contextmanager
    def expecting(self, count: int) -> Iterator[None]:
        request_id = next(self._ids)
        self._send(protocol.encode(protocol.Message(protocol.Kind.EXPECT, request_id, count)))
        previous = getattr(self._announced, "request_id", None)
        self._announced.request_id = request_id
        try:
            yield
        finally:
            # run() takes the id over; if it never did, the announced images will not come. An enclosing
            # announcement is this thread's again (as in Batcher.expecting), withdrawn when its block ends.
            if getattr(self._announced, "request_id", None) == request_id:
                self._send(protocol.encode(protocol.Message(protocol.Kind.CANCEL, request_id)))
            self._announced.request_id = previous

    def run(self, rows: np.ndarray, timeout_s: float) -> Completed:
        check_rows(rows, self.info.record.preprocessing)
        return self._exchange(lambda request_id: protocol.infer(request_id, rows, timeout_s), timeout_s)

    def run_jpegs(self, datas: Sequence[bytes], timeout_s: float) -> Completed:
        if not datas:
            raise ValueError("no JPEGs to run")
        return self._exchange(lambda request_id: protocol.infer_jpegs(request_id, datas, timeout_s), timeout_s)

    def _exchange(self, infer: Callable[[int], bytes], timeout_s: float) -> Completed:
        """Send the INFER that ``infer`` builds for a request id, and wait for its answer."""
        if timeout_s <= 0:
            raise DeadlineExceeded("the request's deadline passed before its inference could start")
        request_id = getattr(self._announced, "request_id", None) or next(self._ids)
        self._announced.request_id = None
        answer: Future[protocol.Message] = Future()
        self._waiting[request_id] = answer
        self._send(infer(request_id))
        try:
            message = answer.result(timeout=timeout_s)
        except FutureTimeout:
            self._waiting.pop(request_id, None)
            self._send(protocol.encode(protocol.Message(protocol.Kind.CANCEL, request_id)))
            raise DeadlineExceeded("inference did not finish before the request's deadline") from None
        if message.kind == protocol.Kind.RESULT:
            return Completed(protocol.logits_of(message), message.aux)
        raise _error_of(message)

    def stop(self, grace_s: float) -> None:
        """After this front's last request: close the connection (the engine outlives the fronts)."""
        self._closed = True
        if self._connection is not None:
            self._connection.close()

    def _send(self, frame: bytes) -> None:
        if self._connection is None or self._closed:
            raise EngineUnavailable("the engine process is not connected")
        try:
            with self._send_lock:
                self._connection.send_bytes(frame)
        except OSError as exc:
            raise EngineUnavailable(f"the engine process cannot be reached: {exc}") from exc

    def _read(self) -> None:
        assert self._connection is not None
        try:
            while True:
                message = protocol.decode(self._connection.recv_bytes())
                answer = self._waiting.pop(message.request_id, None)
                if answer is not None:
                    answer.set_result(message)
        except (EOFError, OSError, protocol.ProtocolViolation) as exc:
            if not self._closed:
                log.critical("lost the engine process (%s): answering 503 until the server restarts", exc)
        finally:
            self._closed = True
            for answer in list(self._waiting.values()):
                answer.set_exception(EngineUnavailable("the engine process is gone"))
            self._waiting.clear()


def _error_of(message: protocol.Message) -> Exception:
    text = bytes(message.payload).decode(errors="replace")
    code = protocol.ErrorCode(message.aux) if message.aux in protocol.ErrorCode._value2member_map_ else None
    if code == protocol.ErrorCode.QUEUE_FULL:
        return QueueFull(text, max(1, int(message.seconds)))
    if code == protocol.ErrorCode.DEADLINE:
        return DeadlineExceeded(text)
    if code == protocol.ErrorCode.STOPPING:
        return BatcherStopped(text)
    if code == protocol.ErrorCode.NOT_READY:
        return EngineUnavailable(text)
    if code == protocol.ErrorCode.UNDECODED:
        return DeviceDecodeRefused(text)
    return RuntimeError(text or "inference failed")
