"""Every error answer is JSON: {"error": {"code": "...", "message": "..."}} with a fitting status."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .batching import BatcherStopped, DeadlineExceeded, QueueFull
from .decoding import ImageTooLarge, InvalidImage, UnsupportedImageFormat
from .engine.base import EngineUnavailable
from .served_models import UnknownModel
from .service import NotReady

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def is_v2_path(path: str) -> bool:
    """Whether ``path`` is under /v2, whose errors answer in the Open Inference Protocol's own form."""
    return path == "/v2" or path.startswith("/v2/")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def api_error_from(exc: Exception) -> ApiError | None:
    """The HTTP meaning of the domain errors that the model side raises, or None if it has none."""
    mapping: list[tuple[type[Exception], int, str]] = [
        (InvalidImage, 400, "invalid_image"),
        (UnsupportedImageFormat, 415, "unsupported_image_format"),
        (ImageTooLarge, 413, "image_too_large"),
        (NotReady, 503, "not_ready"),
        (EngineUnavailable, 503, "engine_unavailable"),
        (BatcherStopped, 503, "shutting_down"),
        (DeadlineExceeded, 504, "deadline_exceeded"),
        (UnknownModel, 404, "model_not_found"),
    ]
    if isinstance(exc, QueueFull):
        return ApiError(503, "overloaded", str(exc), {"Retry-After": str(exc.retry_after_s)})
    for kind, status, code in mapping:
        if isinstance(exc, kind):
            headers = {"Retry-After": "1"} if status == 503 else None
            return ApiError(status, code, str(exc), headers)
    return None


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        if is_v2_path(request.path):
            # Unknown paths and methods under /v2 answer in the Open Inference Protocol's own form.
            response = jsonify({"error": exc.description or exc.name})
            response.status_code = exc.code or 500
        for name, value in exc.get_headers():
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        mapped = api_error_from(exc)
        if mapped is not None:
            return _api_error(mapped)
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed to handle this request")
