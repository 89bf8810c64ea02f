"""The paths of the seed API (liveness, readiness, classifying a file of the images folder) and of the uploads."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from .answers import error_answer, json_answer, ref
from .parameters import model_query, top_k_parameter
from .served import Served

_CLASSIFY_ERRORS = {
    "400": error_answer("`invalid_image` (empty, truncated, not an image) or `invalid_argument` (top_k)"),
    "413": error_answer("`image_too_large`: more pixels than --max-image-pixels (or a folder's file over --max-body-bytes)"),
    "415": error_answer("`unsupported_image_format`: an image format the server does not accept"),
    "503": error_answer("`not_ready` (model loading), `overloaded` (queue full) or `shutting_down`", True),
    "504": error_answer("`deadline_exceeded`: the request's deadline (--request-timeout-s) passed"),
}


def seed_paths(settings: Settings, served: Served) -> dict[str, Any]:
    model_not_found = error_answer("`model_not_found`: ?model= names no served model")
    return {
        "/": {
            "get": {
                "tags": ["Seed"],
                "summary": "Liveness: the process answers (also while the models load); the served models",
                "operationId": "liveness",
                "parameters": [model_query(served, "The model that `model` and `ready` report on")],
                "responses": {"200": json_answer(ref("Liveness"), "The server is up"), "404": model_not_found},
            }
        },
        "/ready": {
            "get": {
                "tags": ["Seed"],
                "summary": "Readiness: 200 while every model is loaded and warm and the server is not shutting down",
                "operationId": "readiness",
                "parameters": [model_query(served, "Only this model's readiness")],
                "responses": {
                    "200": json_answer(ref("Readiness"), "Ready"),
                    "404": model_not_found,
                    "503": error_answer("`not_ready` (a model is still loading) or `shutting_down` (SIGTERM received)", True),
                },
            }
        },
        "/inference/{filename}": {
            "get": {
                "tags": ["Seed"],
                "summary": "Classify a file of the server's images folder",
                "operationId": "classifyFile",
                "parameters": [
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "description": "Path inside the images folder (sub-folders allowed; never outside it)",
                        "schema": {"type": "string"},
                        "example": "cat.jpg",
                    },
                    model_query(served, "The model that classifies it"),
                    top_k_parameter(served),
                ],
                "responses": {
                    "200": json_answer(ref("Classification"), "The top-k classes"),
                    **_CLASSIFY_ERRORS,
                    "400": error_answer("`invalid_path`, `invalid_image` or `invalid_argument`"),
                    "404": error_answer(
                        "`image_not_found` (put the image into the images folder) or `model_not_found` (?model= "
                        "names no served model)"
                    ),
                },
            }
        },
        "/inference": {
            "post": {
                "tags": ["Uploads"],
                "summary": "Classify uploaded images: multipart `file` parts, or a raw image body",
                "description": (
                    "One image: the same answer as GET /inference/{filename}. Several `file` parts: "
                    "`{\"results\": [...]}` in order, each its classification or its own error. "
                    f"At most --max-images-per-request ({settings.max_images_per_request}) images and "
                    f"--max-body-bytes ({settings.max_body_bytes}) bytes per request."
                ),
                "operationId": "classifyUploads",
                "parameters": [model_query(served, "The model that classifies them"), top_k_parameter(served)],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                        "minItems": 1,
                                        "maxItems": settings.max_images_per_request,
                                    }
                                },
                            },
                            "encoding": {"file": {"contentType": "image/*, application/octet-stream"}},
                        },
                        "image/*": {"schema": {"type": "string", "format": "binary"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "responses": {
                    "200": json_answer(
                        {"oneOf": [ref("Classification"), ref("UploadResults")]},
                        "One image: its classification; several: their results in order",
                    ),
                    **_CLASSIFY_ERRORS,
                    "400": error_answer(
                        "`missing_file` (no image in the request), `too_many_images` (more than "
                        "--max-images-per-request), `invalid_image` or `invalid_argument`"
                    ),
                    "404": model_not_found,
                    "413": error_answer("`payload_too_large` (body over --max-body-bytes) or `image_too_large`"),
                    "415": error_answer("`unsupported_media_type` (not multipart, image/* or octet-stream) or `unsupported_image_format`"),
                },
            }
        },
    }
