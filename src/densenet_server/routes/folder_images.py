"""The seed API's routes: liveness (GET /), readiness (GET /ready), and classifying a file of the images
folder (GET /inference/<filename>)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from .. import __version__, request_scope
from ..errors import ApiError
from ..images_folder import ImageNotFound, UnsafePath, resolve_image_path
from ..weights import MODEL_NAME
from .common import layout, service, top_k_param

blueprint = Blueprint("folder_images", __name__)


@blueprint.get("/")
def liveness() -> Any:
    return jsonify(
        {
            "status": "ok",
            "model": MODEL_NAME,
            "ready": service().ready,
            "version": __version__,
            "usage": "GET /inference/<filename> classifies a file of the images folder",
            "ui": "/ui",
            "docs": "/docs",
            "layout": layout(),
        }
    )


@blueprint.get("/ready")
def readiness() -> Any:
    """200 while new requests should be sent here; see the README's "What /ready means"."""
    the_service = service()
    if the_service.draining:
        raise ApiError(503, "shutting_down", "the server is shutting down; send requests elsewhere", {"Retry-After": "1"})
    if not the_service.ready:
        raise ApiError(503, "not_ready", "the model is still loading", {"Retry-After": "1"})
    return jsonify({"status": "ready", "model": MODEL_NAME})


@blueprint.get("/inference/<path:filename>")
def classify_file(filename: str) -> Any:
    images_dir = service().settings.images_dir
    top_k = top_k_param()
    try:
        path = resolve_image_path(images_dir, filename)
    except UnsafePath as exc:
        raise ApiError(400, "invalid_path", str(exc)) from exc
    except ImageNotFound as exc:
        raise ApiError(
            404,
            "image_not_found",
            f"No image named '{filename}' in the images folder. Put the image into the images "
            f"folder ({images_dir}) and request /inference/{filename} again.",
        ) from exc
    limit = service().settings.max_body_bytes
    with path.open("rb") as stream:
        # A file of the folder gets the same byte limit as an upload: a huge one must not fill the memory.
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "image_too_large", f"the file is larger than the server's limit of {limit} bytes (--max-body-bytes)")
    request_scope.note_image_bytes(len(data))
    return jsonify(service().classify(data, top_k))
