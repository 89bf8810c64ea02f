"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from .config import Settings
from .layout import Layout
from .errors import register_error_handlers
from .routes import folder_images, metrics, observability, pages, uploads, v2
from .service import InferenceService


def create_app(
    settings: Settings, service: InferenceService | None = None, layout: Layout | None = None
) -> Flask:
    """An app serving ``service`` (built from ``settings`` if not given; the caller starts it).
    ``layout``: how `serve` uses the machine, shown by GET / and the v2 server metadata."""
    app = Flask(__name__)
    # No redirects (which would be HTML) for "//": a doubled slash is answered like any other path.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["densenet_service"] = service or InferenceService(settings)
    app.extensions["densenet_layout"] = layout.to_dict() if layout is not None else None
    register_error_handlers(app)
    # First, so that its hooks wrap all others: the request id and deadline exist before any other runs.
    app.register_blueprint(observability.blueprint)
    app.register_blueprint(folder_images.blueprint)
    for blueprint in (uploads.blueprint, v2.blueprint, metrics.blueprint, pages.blueprint):
        app.register_blueprint(blueprint)
    return app
