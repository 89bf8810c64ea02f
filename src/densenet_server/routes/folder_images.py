"""The seed API's routes: liveness (GET /), readiness (GET /ready), and classifying a file of the images
folder (GET /inference/<filename>)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from .. import __version__, request_scope
from ..errors import ApiError
from ..images_folder import ImageNotFound, UnsafePath, resolve_image_path
from ..model_summary import summarize
from .access_control import auth_scheme
from .common import asked_models, layout, model_top_k, models, server_settings, service

blueprint = Blueprint("folder_images", __name__)


@blueprint.get("/")
def liveness() -> Any:
    asked = asked_models()
    return jsonify(
        {
            "status": "ok",
            # The seed's fields: the model that answers without ?model= (or the one it names), and
            # whether every model asked about is ready.
            "model": asked[0].name,
            "ready": all(each.ready for each in asked),
            "version": __version__,
            "usage": "GET /inference/<filename> classifies a file of the images folder",
            "ui": "/ui",
            "docs": "/docs",
            # Whether the other routes need 'Authorization: Bearer <key>': the web page asks for one.
            "auth": auth_scheme(),
            "layout": layout(),
            "models": [summarize(each).to_dict() for each in models()],
        }
    )


@blueprint.get("/ready")
def readiness() -> Any:
    """200 while new requests should be sent here: every model (or the one ?model= names) is ready; see the
    README's "What /ready means"."""
    asked = asked_models()
    if any(each.draining for each in asked):
        raise ApiError(503, "shutting_down", "the server is shutting down; send requests elsewhere", {"Retry-After": "1"})
    loading = [each.name for each in asked if not each.ready]
    if loading:
        message = "the model is still loading" if len(asked) == 1 else f"still loading: {', '.join(loading)}"
        raise ApiError(503, "not_ready", message, {"Retry-After": "1"})
    return jsonify({"status": "ready", "model": asked[0].name})


@blueprint.get("/inference/<path:filename>")
def classify_file(filename: str) -> Any:
    chosen = service()
    settings = server_settings()
    images_dir = settings.images_dir
    top_k = model_top_k(chosen)
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
    limit = settings.max_body_bytes
    with path.open("rb") as stream:
        # A file of the folder gets the same byte limit as an upload: a huge one must not fill the memory.
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "image_too_large", f"the file is larger than the server's limit of {limit} bytes (--max-body-bytes)")
    request_scope.note_image_bytes(len(data))
    return jsonify(chosen.classify(data, top_k))
