"""API keys at the door: a request that needs a key (access_policy) and carries no valid one is answered
401 by this hook, before any route, body parsing or model lookup runs, so it never reaches a model.

Only the request id, the deadline and the request metrics' timer run before it (their blueprints are
registered first, see app.py): a refused request still gets its X-Request-ID, its access-log line and its
count in densenet_http_requests_total{status="401"}.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ..access_policy import needs_key
from ..api_keys import ApiKeys, bearer_token
from ..errors import error_response, is_v2_path

blueprint = Blueprint("access_control", __name__)

EXTENSION = "densenet_access"
# RFC 6750: a request without credentials gets the scheme and realm; one with a wrong key also learns
# that its token was refused (error="invalid_token"), never which part of it was wrong.
CHALLENGE = 'Bearer realm="densenet-server"'
INVALID_TOKEN = CHALLENGE + ', error="invalid_token"'
BEARER = "bearer"
NO_AUTH = "none"
MISSING_MESSAGE = "this server needs an API key: send the header 'Authorization: Bearer <key>'"
REFUSED_MESSAGE = "the API key was not accepted"


@dataclass(frozen=True)
class AccessControl:
    keys: ApiKeys
    metrics_open: bool


def install(app: Flask, keys: ApiKeys, metrics_open: bool) -> None:
    """Check every request of ``app`` against ``keys`` (no check at all when they are not required)."""
    app.extensions[EXTENSION] = AccessControl(keys, metrics_open)
    app.register_blueprint(blueprint)


def current() -> AccessControl:
    """This app's keys and whether /metrics is open (what the OpenAPI document describes)."""
    access: AccessControl = current_app.extensions[EXTENSION]
    return access


def auth_scheme() -> str:
    """What GET / tells clients (and the web page, which then asks for a key): "bearer" when the protected
    routes need a key, else "none"."""
    return BEARER if current().keys.required else NO_AUTH


@blueprint.before_app_request
def _require_key() -> Response | None:
    access = current()
    if not access.keys.required:
        return None
    rule = request.url_rule.rule if request.url_rule is not None else None
    if not needs_key(rule, access.metrics_open):
        return None
    token = bearer_token(request.headers.get("Authorization"))
    if access.keys.allows(token):
        return None
    return _refusal(presented=token is not None)


def _refusal(presented: bool) -> Response:
    message = REFUSED_MESSAGE if presented else MISSING_MESSAGE
    if is_v2_path(request.path):
        # The Open Inference Protocol's own error form, as every other /v2 error.
        response = jsonify({"error": message})
        response.status_code = 401
    else:
        response = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = INVALID_TOKEN if presented else CHALLENGE
    return response
