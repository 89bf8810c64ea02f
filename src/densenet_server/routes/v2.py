"""The Open Inference Protocol v2 (KServe / Triton REST): health, metadata and inference of each served
model by name under /v2, and the model repository's index.

Errors answer in the protocol's own form, {"error": "<message>"}. Health answers speak both dialects:
the status is the answer (200 true, 400 false), which is all Triton's text and clients read, and the body
is KServe's ({"live": true}, {"ready": false}, {"name": ..., "ready": ...}), which KServe's clients parse.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import v2_inference
from ..errors import api_error_from
from ..model_summary import summarize
from ..served_models import UnknownModel
from ..service import InferenceService
from .common import layout, models, server_settings
from .uploads import read_body
from .v2_repository import LOAD_REFUSED, ready_only, repository_index
from .v2_tensors import HEADER_LENGTH, ProtocolError, encode_infer_response, parse_infer_request

log = logging.getLogger(__name__)

blueprint = Blueprint("v2", __name__, url_prefix="/v2")


class V2Error(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


@blueprint.errorhandler(V2Error)
def _v2_error(exc: V2Error) -> Response:
    return _error_response(exc.status, exc.message, exc.headers)


@blueprint.errorhandler(ProtocolError)
def _protocol_error(exc: ProtocolError) -> Response:
    return _error_response(exc.status, str(exc))


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(_: RequestEntityTooLarge) -> Response:
    return _error_response(413, _body_limit_message())


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _error_response(exc.code or 500, exc.description or exc.name)


@blueprint.errorhandler(Exception)
def _domain_error(exc: Exception) -> Response:
    mapped = api_error_from(exc)
    if mapped is None:
        log.exception("unhandled error in a v2 request")
        return _error_response(500, "the server failed to handle this request")
    return _error_response(mapped.status, mapped.message, mapped.headers)


def _body_limit_message() -> str:
    limit = server_settings().max_body_bytes
    log.warning("refused a v2 request body of %s bytes: the limit is %d bytes (--max-body-bytes)", request.content_length, limit)
    return f"the request body is larger than the server's limit of {limit} bytes (--max-body-bytes)"


def _model(model_name: str, model_version: str | None) -> InferenceService:
    """The model served as ``model_name`` (of ``model_version``, when the path names one); 404 for another."""
    try:
        return v2_inference.chosen_model(models(), model_name, model_version)
    except UnknownModel as exc:
        served = ", ".join(f"'{name}'" for name in models().names)
        raise V2Error(404, f"unknown model '{model_name}'; this server serves {served}") from exc
    except v2_inference.UnknownVersion as exc:
        raise V2Error(404, str(exc)) from exc


def _health(body: dict[str, Any], ok: bool) -> Response:
    # Triton's text says "empty body", but its clients ignore the body; KServe's client raises without it.
    response = jsonify(body)
    response.status_code = 200 if ok else 400
    return response


@blueprint.get("")
def server_metadata() -> Any:
    metadata = v2_inference.server_metadata()
    if layout() is not None:
        metadata["layout"] = layout()
    return jsonify(metadata)


@blueprint.get("/health/live")
def server_live() -> Response:
    return _health({"live": True}, True)


@blueprint.get("/health/ready")
def server_ready() -> Response:
    ready = models().ready
    return _health({"ready": ready}, ready)


@blueprint.get("/models/<model_name>/ready")
@blueprint.get("/models/<model_name>/versions/<model_version>/ready")
def model_ready(model_name: str, model_version: str | None = None) -> Response:
    chosen = _model(model_name, model_version)
    ready = chosen.ready  # read once: the body and the status must agree
    return _health({"name": chosen.name, "ready": ready}, ready)


@blueprint.post("/repository/index")
def repository() -> Response:
    """The repository extension's index: every served model, its version and state."""
    only_ready = ready_only(read_body(server_settings().max_body_bytes))
    return jsonify(repository_index([summarize(each) for each in models()], only_ready))


@blueprint.post("/repository/models/<model_name>/load")
@blueprint.post("/repository/models/<model_name>/unload")
def load_or_unload(model_name: str) -> Response:
    _model(model_name, None)
    raise V2Error(400, LOAD_REFUSED)


@blueprint.get("/models/<model_name>")
@blueprint.get("/models/<model_name>/versions/<model_version>")
def model_metadata(model_name: str, model_version: str | None = None) -> Any:
    return jsonify(v2_inference.model_metadata(_model(model_name, model_version)))


@blueprint.post("/models/<model_name>/infer")
@blueprint.post("/models/<model_name>/versions/<model_version>/infer")
def infer(model_name: str, model_version: str | None = None) -> Response:
    chosen = _model(model_name, model_version)
    settings = server_settings()
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise V2Error(413, _body_limit_message())
    v2_inference.ensure_loaded(chosen)
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise V2Error(400, "compressed request bodies (Content-Encoding) are not supported")
    record = chosen.info.record
    body = read_body(settings.max_body_bytes)
    parsed = parse_infer_request(
        body, request.headers.get(HEADER_LENGTH), record.num_classes, record.preprocessing.input_shape
    )
    probabilities = v2_inference.probabilities(chosen, parsed, settings.max_images_per_request)
    body, header_length = encode_infer_response(parsed, probabilities, record.categories, chosen.name, record.version)
    if header_length is None:
        return Response(body, content_type="application/json")
    response = Response(body, content_type="application/octet-stream")
    response.headers[HEADER_LENGTH] = str(header_length)
    return response
