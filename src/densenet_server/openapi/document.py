"""The document's assembly: the paths and schemas of every module, the API keys when required, its info."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..config import Settings
from ..model_summary import ModelSummary
from .answers import error_schemas
from .operations import operations_paths
from .schemas import answer_schemas
from .security import BEARER_SCHEME, bearer_scheme, require_key
from .seed_paths import seed_paths
from .served import Served
from .v2_paths import v2_paths
from .v2_schemas import v2_schemas


def openapi_document(
    settings: Settings, models: Sequence[ModelSummary], keys_required: bool = False, metrics_open: bool = False
) -> dict[str, Any]:
    """The document of a server with these ``settings`` serving ``models`` (the default first);
    ``keys_required``: its protected operations need an API key (``metrics_open``: /metrics does not)."""
    served = Served.of(models)
    paths: dict[str, Any] = {**seed_paths(settings, served), **v2_paths(served), **operations_paths()}
    components: dict[str, Any] = {
        "schemas": {**error_schemas(), **answer_schemas(served), **v2_schemas(served)}
    }
    if keys_required:
        components["securitySchemes"] = {BEARER_SCHEME: bearer_scheme()}
        require_key(paths, metrics_open)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "densenet-server",
            "version": __version__,
            "description": (
                f"{_models_described(models)} Errors are JSON "
                '`{"error": {"code": "...", "message": "..."}}`, except under /v2, which answers in the '
                'Open Inference Protocol\'s own `{"error": "..."}` form. Every answer carries an `X-Request-ID` '
                "header: the request's own when it sent a plausible one, else a new one."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": components,
    }


def _models_described(models: Sequence[ModelSummary]) -> str:
    def one(model: ModelSummary) -> str:
        facts = [model.architecture]
        if model.classes is not None:  # known once the model is loaded
            facts.append(f"{model.classes} classes")
        if model.multi_label:
            facts.append("multi-label")
        return f"`{model.name}` ({', '.join(facts)})"

    if len(models) == 1:
        return f"Classifies images with the model {one(models[0])}."
    return (
        f"Classifies images with {len(models)} models: {'; '.join(one(m) for m in models)}. The first is the "
        "default; `?model=` (or /v2/models/{model_name}) chooses another."
    )
