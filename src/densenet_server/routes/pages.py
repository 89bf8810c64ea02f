"""Documentation and the web page: /openapi.json, /docs (Swagger UI, vendored) and /ui."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from ..model_summary import summarize
from ..openapi import openapi_document
from . import access_control
from .common import models, server_settings

blueprint = Blueprint("pages", __name__)


@blueprint.get("/openapi.json")
def openapi() -> Any:
    access = access_control.current()
    summaries = [summarize(each) for each in models()]
    return jsonify(openapi_document(server_settings(), summaries, access.keys.required, access.metrics_open))


@blueprint.get("/docs")
def docs() -> Any:
    # The page's script sits in static/docs.js (no inline code), and Swagger UI is vendored: no CDN.
    return current_app.send_static_file("docs.html")


@blueprint.get("/ui")
def ui() -> Any:
    return current_app.send_static_file("ui/index.html")
