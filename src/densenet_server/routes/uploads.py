"""POST /inference: classify uploaded images (multipart `file` parts, or a raw image body)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import request_scope
from ..decoding import ImageError
from ..errors import ApiError, api_error_from, error_response
from .common import model_top_k, server_settings, service

log = logging.getLogger(__name__)

blueprint = Blueprint("uploads", __name__)

FILE_FIELD = "file"
RAW_BODY_NAME = "body"


def _body_too_large() -> ApiError:
    limit = server_settings().max_body_bytes
    size = request.content_length
    log.warning(
        "refused an upload of %s bytes to %s: the limit is %d bytes (--max-body-bytes)",
        size if size is not None else "more than the limit of", request.path, limit,
    )
    return ApiError(
        413,
        "payload_too_large",
        f"the request body is larger than the server's limit of {limit} bytes "
        "(--max-body-bytes / DENSENET_MAX_BODY_BYTES)",
    )


def read_body(limit: int) -> bytes:
    """The raw body; RequestEntityTooLarge past ``limit``, also for chunked bodies (no Content-Length),
    which werkzeug's get_data() would silently cut at the limit."""
    data = request.get_data(cache=False)
    if len(data) >= limit and request.stream.read(1):  # the read raises once a chunked body is over
        raise RequestEntityTooLarge()
    return data


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(_: RequestEntityTooLarge) -> Any:
    # Raised by werkzeug while reading a body without (or with a false) Content-Length.
    error = _body_too_large()
    return error_response(error.status, error.code, error.message)


def _uploaded_images() -> list[tuple[str, bytes]]:
    """(file name, bytes) of each uploaded image, in order."""
    settings = server_settings()
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise _body_too_large()
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        parts = [(part.filename or "", part.read()) for part in request.files.getlist(FILE_FIELD)]
        # A browser form with no file chosen still sends an empty, unnamed part: that is no file.
        parts = [(name, data) for name, data in parts if name or data]
        if not parts:
            raise ApiError(400, "missing_file", f"the form has no '{FILE_FIELD}' part with an image")
        if len(parts) > settings.max_images_per_request:
            raise ApiError(
                400,
                "too_many_images",
                f"the request holds {len(parts)} images; the limit is {settings.max_images_per_request} "
                "per request (--max-images-per-request)",
            )
        return [(name or f"{FILE_FIELD}{index}", data) for index, (name, data) in enumerate(parts)]
    if mimetype.startswith("image/") or mimetype == "application/octet-stream":
        data = read_body(settings.max_body_bytes)
        if not data:
            raise ApiError(400, "missing_file", "the request body is empty; send the image as the body")
        return [(RAW_BODY_NAME, data)]
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {mimetype or '(none)'} is not accepted; send multipart/form-data with "
        f"'{FILE_FIELD}' parts, or the image itself as image/* or application/octet-stream",
    )


@blueprint.post("/inference")
def classify_uploads() -> Any:
    chosen = service()  # an unknown ?model= is 404 whatever the body holds
    images = _uploaded_images()
    request_scope.note_image_bytes(sum(len(data) for _, data in images))
    top_k = model_top_k(chosen)
    if len(images) == 1:
        return jsonify(chosen.classify(images[0][1], top_k))
    outcomes = chosen.classify_many([data for _, data in images], top_k)
    return jsonify({"results": [_result(name, outcome) for (name, _), outcome in zip(images, outcomes)]})


def _result(name: str, outcome: dict[str, Any] | ImageError) -> dict[str, Any]:
    if isinstance(outcome, dict):
        return {"filename": name, **outcome}
    error = api_error_from(outcome)
    assert error is not None  # every ImageError has an HTTP meaning
    return {"filename": name, "status": error.status, "error": {"code": error.code, "message": error.message}}
