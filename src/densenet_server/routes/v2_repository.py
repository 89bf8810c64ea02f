"""The Open Inference Protocol's model repository extension, as Triton defines it and its clients call it:
the index of the served models (POST /v2/repository/index). No Flask here: it takes the request's body and
the models' summaries, and raises ProtocolError for a malformed request.

Models are loaded at start-up, from the settings or the models file; the extension's load and unload
requests are refused (as Triton refuses them when it does not control models at run time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..model_summary import ModelSummary
from .v2_tensors import ProtocolError

READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
LOAD_REFUSED = (
    "this server loads its models at start-up (--model or --models-file) and does not load or unload "
    "models while it runs"
)


def ready_only(body: bytes) -> bool:
    """Whether the index request asks for ready models only: an empty body, or {"ready": true|false}."""
    if not body.strip():
        return False  # what tritonclient sends
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"the request is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProtocolError("the request must be a JSON object")
    ready = document.get("ready", False)
    if not isinstance(ready, bool):
        raise ProtocolError("'ready' must be a boolean")
    return ready


def repository_index(models: Sequence[ModelSummary], only_ready: bool) -> list[dict[str, Any]]:
    """One entry per served model, in the server's order: name, version and state (and why it is not ready)."""
    index = []
    for model in models:
        if only_ready and not model.ready:
            continue
        state = READY if model.ready else UNAVAILABLE
        entry: dict[str, Any] = {"name": model.name, "version": model.version, "state": state}
        if not model.ready:
            entry["reason"] = "shutting down" if model.loaded else "loading"
        index.append(entry)
    return index
