"""The API keys: the bearer scheme, and which operations require a key (and may answer 401)."""

from __future__ import annotations

from typing import Any

from ..access_policy import open_paths
from ..errors import is_v2_path
from .answers import json_answer, ref

BEARER_SCHEME = "bearerAuth"


def bearer_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An API key of the server's --api-keys-file, sent as `Authorization: Bearer <key>`. Without a "
            "valid one a protected operation answers 401 `unauthorized` with `WWW-Authenticate: Bearer`."
        ),
    }


def require_key(paths: dict[str, Any], metrics_open: bool) -> None:
    """This server has API keys: every operation but the open ones (access_policy) requires one and may
    answer 401, in the error form of its path."""
    challenge = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="densenet-server"'}}
    unopened = {path: operations for path, operations in paths.items() if path not in open_paths(metrics_open)}
    for path, operations in unopened.items():
        refused = json_answer(
            ref("V2Error" if is_v2_path(path) else "Error"),
            "`unauthorized`: no API key, or one the server does not accept",
            challenge,
        )
        for operation in operations.values():
            operation["security"] = [{BEARER_SCHEME: []}]
            operation["responses"]["401"] = refused
