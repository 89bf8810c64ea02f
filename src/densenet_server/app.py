"""The Flask application factory."""

from __future__ import annotations

from flask import Flask

from .api_keys import ApiKeys
from .config import Settings
from .layout import Layout
from .errors import register_error_handlers
from .routes import access_control, folder_images, metrics, observability, pages, uploads, v2
from .served_models import ServedModels
from .service import InferenceService


def create_app(
    settings: Settings,
    models: ServedModels | InferenceService | None = None,
    layout: Layout | None = None,
    api_keys: ApiKeys | None = None,
) -> Flask:
    """An app serving ``models`` (or one model's service; built in-process from ``settings`` if not given;
    the caller starts them). ``layout``: how `serve` uses the machine, shown by GET / and the v2 server
    metadata. ``api_keys``: the keys its protected routes need (read from settings.api_keys_file if not
    given; `serve` passes the master's, which SIGHUP reloads)."""
    app = Flask(__name__)
    # No redirects (which would be HTML) for "//": a doubled slash is answered like any other path.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if models is None:
        models = ServedModels.in_process(settings)
    elif isinstance(models, InferenceService):
        models = ServedModels([models])
    app.extensions["densenet_models"] = models
    app.extensions["densenet_layout"] = layout.to_dict() if layout is not None else None
    register_error_handlers(app)
    # First, so that its hooks wrap all others: the request id and deadline exist before any other runs.
    app.register_blueprint(observability.blueprint)
    # Then the request metrics' timer, so that refused requests are counted too; then the API keys, before
    # every other hook and route: a request without a valid key goes no further (never to a model).
    app.register_blueprint(metrics.blueprint)
    keys = api_keys if api_keys is not None else ApiKeys(settings.api_keys_file)
    access_control.install(app, keys, settings.metrics_open)
    app.register_blueprint(folder_images.blueprint)
    for blueprint in (uploads.blueprint, v2.blueprint, pages.blueprint):
        app.register_blueprint(blueprint)
    return app
