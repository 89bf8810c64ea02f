"""Helpers shared by the blueprints: the models of this app, the one a request chooses, and query parameters."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from ..config import Settings
from ..errors import ApiError
from ..served_models import ServedModels
from ..service import InferenceService

DEFAULT_TOP_K = 5
# Requests that match no route share one label, so scanners cannot create new metric series.
UNMATCHED_ROUTE = "<unmatched>"


MODEL_PARAM = "model"


def models() -> ServedModels:
    return current_app.extensions["densenet_models"]


def service() -> InferenceService:
    """The model this request asks for with ?model=NAME (the default model without it); UnknownModel
    (404) for a name the server does not serve."""
    return models().get(request.args.get(MODEL_PARAM))


def asked_models() -> list[InferenceService]:
    """The model ?model=NAME names (UnknownModel for another name), or every model without it: what
    liveness and readiness report on."""
    if MODEL_PARAM in request.args:
        return [service()]
    return list(models())


def server_settings() -> Settings:
    """What is the server's, not a model's (limits, timeouts, the images folder): every model shares the
    default model's. Hooks and limits read it, so that ?model=<unknown> reaches the route's 404."""
    return models().default.settings


def layout() -> dict[str, Any] | None:
    """How the server uses the machine (None in-process, where no layout was chosen)."""
    return current_app.extensions.get("densenet_layout")


def route_label() -> str:
    """The URL rule that matched (e.g. /inference/<path:filename>), never the raw path."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


def top_k_param(classes: int) -> int:
    """?top_k=, from 1 to the model's number of ``classes`` (DEFAULT_TOP_K without it)."""
    raw = request.args.get("top_k")
    if raw is None:
        return DEFAULT_TOP_K
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= classes:
        raise ApiError(400, "invalid_argument", f"top_k must be an integer from 1 to {classes}, got {raw!r}")
    return value


def model_top_k(chosen: InferenceService) -> int:
    """?top_k= for the ``chosen`` model: its class count is known once it is loaded (NotReady, 503, before)."""
    return top_k_param(chosen.info.record.num_classes)
