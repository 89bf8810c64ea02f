"""GET /metrics (Prometheus), and the hooks that count and time every request of the app."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, g, request

from ..metrics import PROMETHEUS_CONTENT_TYPE
from .common import models, route_label

blueprint = Blueprint("metrics", __name__)


@blueprint.before_app_request
def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


@blueprint.after_app_request
def _count_request(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        models().metrics.observe_request(
            request.method, route_label(), response.status_code, time.perf_counter() - started
        )
    return response


@blueprint.get("/metrics")
def metrics() -> Any:
    return Response(models().metrics.exposition(), content_type=PROMETHEUS_CONTENT_TYPE)
