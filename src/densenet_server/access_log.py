"""Structured access logs: one JSON line per request, and the request id that ties a line to a client.

An incoming ``X-Request-ID`` is kept when it is a plausible id (a proxy's or a client's), so one id
follows a request through every hop; anything else (missing, too long, odd characters that could forge
log lines or headers) is replaced by a fresh one. The answer carries the id back in the same header.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

REQUEST_ID_HEADER = "X-Request-ID"
LOGGER_NAME = "densenet_server.access"
STDOUT = "-"
OFF = "off"
MAX_LOGGED_PATH = 256

_PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:+=@/-]{1,128}")


def request_id_from(incoming: str | None) -> str:
    """The client's request id if it is a plausible one, else a new one."""
    if incoming is not None and _PLAUSIBLE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@dataclass(frozen=True)
class AccessRecord:
    time: str  # ISO 8601, UTC, when the answer was ready
    request_id: str
    method: str
    route: str  # the URL rule (bounded set of values), or "<unmatched>"
    path: str  # the path as requested, cut to MAX_LOGGED_PATH characters
    status: int
    latency_ms: float
    body_bytes: int | None  # the request's Content-Length
    image_bytes: int  # encoded image bytes received (0 for requests without images)
    images: int  # images that went through the model
    batch_size: int | None  # images in the forward pass this request's images rode in
    remote_addr: str | None

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


def access_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def enabled() -> bool:
    return bool(access_logger().handlers)


def configure(destination: str) -> None:
    """Send access lines to ``destination``: '-' (standard output), a file path, or 'off'."""
    logger = access_logger()
    # Access lines are data, not diagnostics: they must not also appear in the application log's format.
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if destination == OFF:
        return
    handler: logging.Handler
    if destination == STDOUT:
        handler = logging.StreamHandler(sys.stdout)
    else:
        # Reopens the file when logrotate moves it away.
        handler = logging.handlers.WatchedFileHandler(destination, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)


def write(record: AccessRecord) -> None:
    access_logger().info(record.to_json())
