"""The Open Inference Protocol v2 (KServe / Triton REST): health, metadata and inference under /v2.

Errors answer in the protocol's own form, {"error": "<message>"}; health answers carry no body, as the
protocol says (200 is true, 4xx is false).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .. import __version__, request_scope
from ..backends.loading import chosen_backend
from ..backends.registry import BACKENDS
from ..decoding import ImageError
from ..errors import api_error_from
from ..weights import MODEL_NAME
from ..postprocess import NUM_CLASSES
from ..preprocess import normalize
from .common import layout, service
from .uploads import read_body
from .v2_tensors import (
    IMAGE_INPUT,
    PIXELS_INPUT,
    PIXELS_SHAPE,
    PROBABILITIES_OUTPUT,
    ProtocolError,
    encode_infer_response,
    parse_infer_request,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("v2", __name__, url_prefix="/v2")

MODEL_VERSION = "1"
SERVER_NAME = "densenet-server"
EXTENSIONS = ["classification", "binary_tensor_data"]
HEADER_LENGTH = "Inference-Header-Content-Length"
_PLATFORMS = {backend.name: backend.platform for backend in BACKENDS}


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
    limit = service().settings.max_body_bytes
    log.warning("refused a v2 request body of %s bytes: the limit is %d bytes (--max-body-bytes)", request.content_length, limit)
    return f"the request body is larger than the server's limit of {limit} bytes (--max-body-bytes)"


def _check_model(model_name: str, model_version: str | None) -> None:
    if model_name != MODEL_NAME:
        raise V2Error(404, f"unknown model '{model_name}'; this server serves '{MODEL_NAME}'")
    if model_version is not None and model_version != MODEL_VERSION:
        raise V2Error(
            404, f"unknown version '{model_version}' of model '{MODEL_NAME}'; it has version {MODEL_VERSION}"
        )


def _health(ok: bool) -> Response:
    # The protocol: the status is the answer (200 true, 4xx false) and the body is empty.
    return Response(status=200 if ok else 400)


@blueprint.get("")
def server_metadata() -> Any:
    metadata: dict[str, Any] = {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}
    if layout() is not None:
        metadata["layout"] = layout()
    return jsonify(metadata)


@blueprint.get("/health/live")
def server_live() -> Response:
    return _health(True)


@blueprint.get("/health/ready")
def server_ready() -> Response:
    return _health(service().ready)


@blueprint.get("/models/<model_name>/ready")
@blueprint.get("/models/<model_name>/versions/<model_version>/ready")
def model_ready(model_name: str, model_version: str | None = None) -> Response:
    _check_model(model_name, model_version)
    return _health(service().ready)


@blueprint.get("/models/<model_name>")
@blueprint.get("/models/<model_name>/versions/<model_version>")
def model_metadata(model_name: str, model_version: str | None = None) -> Any:
    _check_model(model_name, model_version)
    return jsonify(
        {
            "name": MODEL_NAME,
            "versions": [MODEL_VERSION],
            "platform": _platform(),
            **_serving_parameters(),
            "inputs": [
                {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
                {"name": PIXELS_INPUT, "datatype": "FP32", "shape": [-1, *PIXELS_SHAPE]},
            ],
            "outputs": [{"name": PROBABILITIES_OUTPUT, "datatype": "FP32", "shape": [-1, NUM_CLASSES]}],
        }
    )


def _serving_parameters() -> dict[str, Any]:
    """How the model runs (once loaded): backend, precision and device, as every answer reports them."""
    if not service().loaded:
        return {}
    info = service().info
    return {"parameters": {"backend": info.backend, "precision": info.precision, "device": info.device}}


def _platform() -> str:
    name = service().info.backend if service().loaded else chosen_backend(service().settings)
    return _PLATFORMS.get(name, name)


@blueprint.post("/models/<model_name>/infer")
@blueprint.post("/models/<model_name>/versions/<model_version>/infer")
def infer(model_name: str, model_version: str | None = None) -> Response:
    _check_model(model_name, model_version)
    the_service = service()
    settings = the_service.settings
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise V2Error(413, _body_limit_message())
    # Not `ready`: while the server drains, a request that reached it is still served.
    if not the_service.loaded:
        raise V2Error(503, f"model '{MODEL_NAME}' is not ready yet; retry once /v2/health/ready answers 200", {"Retry-After": "1"})
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise V2Error(400, "compressed request bodies (Content-Encoding) are not supported")
    body = read_body(settings.max_body_bytes)
    parsed = parse_infer_request(body, request.headers.get(HEADER_LENGTH), NUM_CLASSES)
    if parsed.rows > settings.max_images_per_request:
        raise V2Error(
            400,
            f"the request holds {parsed.rows} images; the limit is {settings.max_images_per_request} "
            "per request (--max-images-per-request)",
        )
    probabilities = _probabilities_of(parsed.inputs)
    body, header_length = encode_infer_response(
        parsed, probabilities, the_service.info.categories, MODEL_NAME, MODEL_VERSION
    )
    if header_length is None:
        return Response(body, content_type="application/json")
    response = Response(body, content_type="application/octet-stream")
    response.headers[HEADER_LENGTH] = str(header_length)
    return response


def _probabilities_of(inputs: list[tuple[str, list[bytes] | np.ndarray]]) -> np.ndarray:
    """Probabilities of every row of the request, in order. Images only: the service's image path, as for
    uploads (announced to the batcher, decoded on the GPU where the engine may). With FP32 tensors too:
    the images are decoded here and everything travels as pixels."""
    if any(isinstance(rows, np.ndarray) for _, rows in inputs):
        return service().probabilities(_pixels_of(inputs))
    tagged = [(name, index, data) for name, rows in inputs for index, data in enumerate(rows)]
    images = [data for _, _, data in tagged]
    request_scope.note_image_bytes(sum(len(data) for data in images))
    outcomes = service().image_probabilities(images)
    for (name, index, _), outcome in zip(tagged, outcomes):
        if isinstance(outcome, ImageError):
            raise V2Error(400, f"input '{name}' element {index}: {outcome}") from outcome
    return np.stack(outcomes)


def _pixels_of(inputs: list[tuple[str, list[bytes] | np.ndarray]]) -> np.ndarray:
    """All rows of the request, in the order of its inputs: the images' uint8 crops, or, when the request
    also holds FP32 tensors, normalised float32 pixels throughout."""
    blocks: list[np.ndarray] = []
    for name, rows in inputs:
        if isinstance(rows, np.ndarray):
            blocks.append(rows)
            continue
        request_scope.note_image_bytes(sum(len(data) for data in rows))
        prepared = service().prepare_many(rows)
        for index, pixels in enumerate(prepared):
            if isinstance(pixels, ImageError):
                raise V2Error(400, f"input '{name}' element {index}: {pixels}") from pixels
        blocks.append(np.stack(prepared))
    if len({block.dtype for block in blocks}) > 1:
        blocks = [normalize(block) if block.dtype == np.uint8 else block for block in blocks]
    return np.concatenate(blocks)
