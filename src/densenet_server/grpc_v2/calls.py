"""What every gRPC call gets, whichever method it calls, as every HTTP request does (routes/observability.py):
a request id, a deadline, the API key check, the status mapping, metrics and an access-log line.

An interceptor wraps each unary method's handler, so the servicer only turns requests into answers and
raises the domain's errors.

- Request id: the `x-request-id` metadata when it is a plausible id, else a new one; it goes back in the
  trailing metadata.
- Deadline: the client's gRPC deadline or --request-timeout-s, whichever is sooner, through the request
  scope the service reads (request_scope.py), so the engine drops a call whose client has given up.
- API keys: with keys required, every method but ServerLive and ServerReady (the probes) needs the
  `authorization` metadata, `Bearer <key>`; otherwise UNAUTHENTICATED before anything else is done.
- Access log: one line per call, `method` "GRPC", `route` and `path` the gRPC method
  (/inference.GRPCInferenceService/ModelInfer), `status` the gRPC status code (0 is OK).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from .. import access_log, request_scope
from ..api_keys import ApiKeys, bearer_token
from ..metrics import Metrics
from .status import Failure, Unauthenticated, failure_of

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
RETRY_AFTER_KEY = "retry-after"
AUTHORIZATION_KEY = "authorization"
OPEN_METHODS = frozenset({"ServerLive", "ServerReady"})
ACCESS_LOG_METHOD = "GRPC"

Behaviour = Callable[[Any, grpc.ServicerContext], Any]


class CallHandling(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: Metrics, request_timeout_s: float, api_keys: ApiKeys | None = None) -> None:
        self._metrics = metrics
        self._request_timeout_s = request_timeout_s
        self._api_keys = api_keys

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # an unknown method (gRPC answers UNIMPLEMENTED), or a stream one (not served)
        behaviour = handler.unary_unary
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self._handle(behaviour, details, request, context),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _handle(self, behaviour: Behaviour, details: grpc.HandlerCallDetails, request: Any, context: grpc.ServicerContext) -> Any:
        metadata = {key: value for key, value in details.invocation_metadata or () if isinstance(value, str)}
        method = details.method.rsplit("/", 1)[-1]
        request_id = access_log.request_id_from(metadata.get(REQUEST_ID_KEY))
        started = time.perf_counter()
        token = request_scope.open_scope(self._timeout_s(context))
        scope = request_scope.current()
        code = grpc.StatusCode.OK
        trailing = [(REQUEST_ID_KEY, request_id)]
        try:
            self._authorize(method, metadata)
            response = behaviour(request, context)
            context.set_trailing_metadata(trailing)
            return response
        except Exception as exc:
            failure = failure_of(exc) or self._internal(exc, method)
            code = failure.code
            if failure.retry_after_s is not None:
                trailing.append((RETRY_AFTER_KEY, failure.retry_after_s))
            context.set_trailing_metadata(trailing)
            context.abort(code, failure.message)
        finally:
            request_scope.close_scope(token)
            seconds = time.perf_counter() - started
            self._metrics.observe_grpc_call(method, code.name, seconds)
            if access_log.enabled():
                access_log.write(_access_record(details.method, request_id, code, seconds, request, context, scope))

    def _timeout_s(self, context: grpc.ServicerContext) -> float:
        """The client's deadline (time_remaining() is None without one) or the server's, whichever is sooner."""
        client_s = context.time_remaining()
        return self._request_timeout_s if client_s is None else min(self._request_timeout_s, client_s)

    def _authorize(self, method: str, metadata: dict[str, str]) -> None:
        if self._api_keys is None or method in OPEN_METHODS:
            return
        if not self._api_keys.allows(bearer_token(metadata.get(AUTHORIZATION_KEY))):
            raise Unauthenticated("this server needs an API key: send the metadata 'authorization: Bearer <key>'")

    @staticmethod
    def _internal(exc: Exception, method: str) -> Failure:
        log.error("unhandled error in a gRPC %s call", method, exc_info=exc)
        return Failure(grpc.StatusCode.INTERNAL, "the server failed to handle this call")


def _access_record(
    grpc_method: str,
    request_id: str,
    code: grpc.StatusCode,
    seconds: float,
    request: Any,
    context: grpc.ServicerContext,
    scope: request_scope.RequestScope | None,
) -> access_log.AccessRecord:
    return access_log.AccessRecord(
        time=access_log.AccessRecord.now(),
        request_id=request_id,
        method=ACCESS_LOG_METHOD,
        route=grpc_method,
        path=grpc_method[: access_log.MAX_LOGGED_PATH],
        status=code.value[0],
        latency_ms=round(seconds * 1000.0, 3),
        body_bytes=request.ByteSize(),
        image_bytes=scope.image_bytes if scope else 0,
        images=scope.images if scope else 0,
        batch_size=scope.batch_size if scope else None,
        remote_addr=peer_address(context.peer()),
    )


def peer_address(peer: str) -> str | None:
    """The address of a gRPC peer ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000"), without its port."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or None
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or None
    return rest or None
