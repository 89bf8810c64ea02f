"""The Open Inference Protocol v2 (KServe / Triton REST): health, metadata and inference of each served
model by name under /v2, and the model repository's index.

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
from ..model_summary import summarize
from ..preprocess import normalize
from ..served_models import UnknownModel
from ..service import InferenceService
from .common import layout, models, server_settings
from .uploads import read_body
from .v2_repository import LOAD_REFUSED, ready_only, repository_index
from .v2_tensors import (
    IMAGE_INPUT,
    PIXELS_INPUT,
    PROBABILITIES_OUTPUT,
    ProtocolError,
    encode_infer_response,
    parse_infer_request,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("v2", __name__, url_prefix="/v2")

SERVER_NAME = "densenet-server"
EXTENSIONS = ["classification", "binary_tensor_data", "model_repository"]
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
    limit = server_settings().max_body_bytes
    log.warning("refused a v2 request body of %s bytes: the limit is %d bytes (--max-body-bytes)", request.content_length, limit)
    return f"the request body is larger than the server's limit of {limit} bytes (--max-body-bytes)"


def _model(model_name: str, model_version: str | None) -> InferenceService:
    """The model served as ``model_name`` (of ``model_version``, when the path names one); 404 for another."""
    try:
        chosen = models().get(model_name)
    except UnknownModel as exc:
        served = ", ".join(f"'{name}'" for name in models().names)
        raise V2Error(404, f"unknown model '{model_name}'; this server serves {served}") from exc
    version = summarize(chosen).version
    if model_version is not None and model_version != version:
        raise V2Error(404, f"unknown version '{model_version}' of model '{model_name}'; it has version {version}")
    return chosen


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
    return _health(models().ready)


@blueprint.get("/models/<model_name>/ready")
@blueprint.get("/models/<model_name>/versions/<model_version>/ready")
def model_ready(model_name: str, model_version: str | None = None) -> Response:
    return _health(_model(model_name, model_version).ready)


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
    chosen = _model(model_name, model_version)
    pixels_shape, probabilities_shape = _tensor_shapes(chosen)
    return jsonify(
        {
            "name": chosen.name,
            "versions": [summarize(chosen).version],
            "platform": _platform(chosen),
            **_serving_parameters(chosen),
            "inputs": [
                {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
                {"name": PIXELS_INPUT, "datatype": "FP32", "shape": pixels_shape},
            ],
            "outputs": [{"name": PROBABILITIES_OUTPUT, "datatype": "FP32", "shape": probabilities_shape}],
        }
    )


def _tensor_shapes(chosen: InferenceService) -> tuple[list[int], list[int]]:
    """The shapes of the `pixels` input and the `probabilities` output, from the model's record; while the
    model loads, its crop size and class count are not read yet: -1, the protocol's "any size"."""
    if not chosen.loaded:
        return [-1, 3, -1, -1], [-1, -1]
    record = chosen.info.record
    return [-1, *record.preprocessing.input_shape], [-1, record.num_classes]


def _serving_parameters(chosen: InferenceService) -> dict[str, Any]:
    """How the model runs (once loaded): backend, precision and device, as every answer reports them."""
    if not chosen.loaded:
        return {}
    info = chosen.info
    return {"parameters": {"backend": info.backend, "precision": info.precision, "device": info.device}}


def _platform(chosen: InferenceService) -> str:
    name = chosen.info.backend if chosen.loaded else chosen_backend(chosen.settings)
    return _PLATFORMS.get(name, name)


@blueprint.post("/models/<model_name>/infer")
@blueprint.post("/models/<model_name>/versions/<model_version>/infer")
def infer(model_name: str, model_version: str | None = None) -> Response:
    chosen = _model(model_name, model_version)
    settings = server_settings()
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise V2Error(413, _body_limit_message())
    # Not `ready`: while the server drains, a request that reached it is still served.
    if not chosen.loaded:
        raise V2Error(503, f"model '{chosen.name}' is not ready yet; retry once /v2/health/ready answers 200", {"Retry-After": "1"})
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise V2Error(400, "compressed request bodies (Content-Encoding) are not supported")
    record = chosen.info.record
    body = read_body(settings.max_body_bytes)
    parsed = parse_infer_request(
        body, request.headers.get(HEADER_LENGTH), record.num_classes, record.preprocessing.input_shape
    )
    if parsed.rows > settings.max_images_per_request:
        raise V2Error(
            400,
            f"the request holds {parsed.rows} images; the limit is {settings.max_images_per_request} "
            "per request (--max-images-per-request)",
        )
    probabilities = _probabilities_of(chosen, parsed.inputs)
    body, header_length = encode_infer_response(parsed, probabilities, record.categories, chosen.name, record.version)
    if header_length is None:
        return Response(body, content_type="application/json")
    response = Response(body, content_type="application/octet-stream")
    response.headers[HEADER_LENGTH] = str(header_length)
    return response


def _probabilities_of(chosen: InferenceService, inputs: list[tuple[str, list[bytes] | np.ndarray]]) -> np.ndarray:
    """Probabilities of every row of the request, in order. Images only: the service's image path, as for
    uploads (announced to the batcher, decoded on the GPU where the engine may). With FP32 tensors too:
    the images are decoded here and everything travels as pixels."""
    if any(isinstance(rows, np.ndarray) for _, rows in inputs):
        return chosen.probabilities(_pixels_of(chosen, inputs))
    tagged = [(name, index, data) for name, rows in inputs for index, data in enumerate(rows)]
    images = [data for _, _, data in tagged]
    request_scope.note_image_bytes(sum(len(data) for data in images))
    outcomes = chosen.image_probabilities(images)
    for (name, index, _), outcome in zip(tagged, outcomes):
        if isinstance(outcome, ImageError):
            raise V2Error(400, f"input '{name}' element {index}: {outcome}") from outcome
    return np.stack(outcomes)


def _pixels_of(chosen: InferenceService, inputs: list[tuple[str, list[bytes] | np.ndarray]]) -> np.ndarray:
    """All rows of the request, in the order of its inputs: the images' uint8 crops, or, when the request
    also holds FP32 tensors, normalised float32 pixels throughout."""
    blocks: list[np.ndarray] = []
    for name, rows in inputs:
        if isinstance(rows, np.ndarray):
            blocks.append(rows)
            continue
        request_scope.note_image_bytes(sum(len(data) for data in rows))
        prepared = chosen.prepare_many(rows)
        for index, pixels in enumerate(prepared):
            if isinstance(pixels, ImageError):
                raise V2Error(400, f"input '{name}' element {index}: {pixels}") from pixels
        blocks.append(np.stack(prepared))
    if len({block.dtype for block in blocks}) > 1:
        preprocessing = chosen.info.record.preprocessing
        blocks = [normalize(block, preprocessing) if block.dtype == np.uint8 else block for block in blocks]
    return np.concatenate(blocks)
