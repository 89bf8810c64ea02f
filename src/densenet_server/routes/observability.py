"""Hooks around every request: its id (X-Request-ID), its deadline, and its JSON access-log line."""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from .. import access_log, request_scope
from .common import route_label, server_settings

blueprint = Blueprint("observability", __name__)


@blueprint.before_app_request
def _begin() -> None:
    g.request_id = access_log.request_id_from(request.headers.get(access_log.REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()
    # The deadline counts from here: decoding, queueing and inference all spend from the same budget.
    g.request_scope_token = request_scope.open_scope(server_settings().request_timeout_s)


@blueprint.after_app_request
def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or access_log.request_id_from(None)
    response.headers[access_log.REQUEST_ID_HEADER] = request_id
    if access_log.enabled():
        started = g.get("request_started", time.perf_counter())
        scope = request_scope.current()
        access_log.write(
            access_log.AccessRecord(
                time=access_log.AccessRecord.now(),
                request_id=request_id,
                method=request.method,
                route=route_label(),
                path=request.path[: access_log.MAX_LOGGED_PATH],
                status=response.status_code,
                latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
                body_bytes=request.content_length,
                image_bytes=scope.image_bytes if scope else 0,
                images=scope.images if scope else 0,
                batch_size=scope.batch_size if scope else None,
                remote_addr=request.remote_addr,
            )
        )
    return response


@blueprint.teardown_app_request
def _end(_: BaseException | None) -> None:
    token = g.pop("request_scope_token", None)
    if token is not None:
        request_scope.close_scope(token)
