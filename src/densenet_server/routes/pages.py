"""Documentation and the web page: /openapi.json, /docs (Swagger UI, vendored) and /ui."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from ..model_summary import summarize
from ..openapi import openapi_document
from .common import models, server_settings

blueprint = Blueprint("pages", __name__)


@blueprint.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document(server_settings(), [summarize(each) for each in models()]))


@blueprint.get("/docs")
def docs() -> Any:
    # The page's script sits in static/docs.js (no inline code), and Swagger UI is vendored: no CDN.
    return current_app.send_static_file("docs.html")


@blueprint.get("/ui")
def ui() -> Any:
    return current_app.send_static_file("ui/index.html")
