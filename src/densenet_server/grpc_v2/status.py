"""The domain's errors as gRPC status codes: the same table as HTTP's (errors.api_error_from), read through
gRPC's own correspondence with HTTP statuses, so that a refusal means the same over both transports.

Nothing a client sends may end as INTERNAL or UNKNOWN: a malformed request, an unreadable image or one
over a limit is INVALID_ARGUMENT, another model NOT_FOUND, a full queue, a loading model or a draining
server UNAVAILABLE (with a `retry-after` in seconds in the trailing metadata; Triton's clients retry on
UNAVAILABLE), a deadline DEADLINE_EXCEEDED. Only the server's own bugs are INTERNAL.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from ..errors import api_error_from
from ..routes.v2_tensors import ProtocolError
from ..v2_inference import UnknownVersion

_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.INVALID_ARGUMENT,  # an image over --max-image-pixels: the argument is refused
    415: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class Unauthenticated(PermissionError):
    """The call needs an API key and carries none that is valid."""


@dataclass(frozen=True)
class Failure:
    code: grpc.StatusCode
    message: str
    retry_after_s: str | None = None  # for UNAVAILABLE: when to try again, as HTTP's Retry-After


def failure_of(exc: BaseException) -> Failure | None:
    """How a call that raised ``exc`` is answered; None for an error no client can cause (a bug)."""
    if isinstance(exc, ProtocolError):
        return Failure(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, UnknownVersion):
        return Failure(grpc.StatusCode.NOT_FOUND, str(exc))
    if isinstance(exc, Unauthenticated):
        return Failure(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    if isinstance(exc, NotImplementedError):
        # What the generated servicer raises for the methods this server does not implement.
        return Failure(grpc.StatusCode.UNIMPLEMENTED, "this method is not implemented by this server")
    mapped = api_error_from(exc) if isinstance(exc, Exception) else None
    if mapped is None or mapped.status not in _BY_HTTP_STATUS:
        return None
    return Failure(_BY_HTTP_STATUS[mapped.status], mapped.message, mapped.headers.get("Retry-After"))
