"""What the server knows about the request being handled: its deadline, and what it cost.

The HTTP layer opens a scope when a request arrives and closes it when the answer leaves; the service
reads the deadline and notes the batch the request rode in, without knowing anything of HTTP. A
context variable carries it, so that nothing between the route and the batcher needs an extra argument.
Outside a request (the CLI, tests in-process) there is no scope and callers use their own defaults.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass
class RequestScope:
    deadline: float  # time.monotonic() by which the answer is due
    image_bytes: int = 0  # encoded image bytes received
    images: int = 0  # images that went to the model
    batch_size: int | None = None  # images in the forward pass this request rode in

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


_current: ContextVar[RequestScope | None] = ContextVar("densenet_request_scope", default=None)


def open_scope(timeout_s: float) -> Token[RequestScope | None]:
    return _current.set(RequestScope(deadline=time.monotonic() + timeout_s))


def close_scope(token: Token[RequestScope | None]) -> None:
    # Request threads are reused: a scope left behind would give the next request a stale deadline.
    _current.reset(token)


def current() -> RequestScope | None:
    return _current.get()


def remaining_s(default_s: float) -> float:
    """Seconds left until the current request's deadline, or ``default_s`` outside a request."""
    scope = _current.get()
    return default_s if scope is None else scope.remaining_s()


def note_image_bytes(count: int) -> None:
    scope = _current.get()
    if scope is not None:
        scope.image_bytes += count


def note_batch(images: int, batch_size: int) -> None:
    scope = _current.get()
    if scope is not None:
        scope.images += images
        scope.batch_size = max(batch_size, scope.batch_size or 0)
