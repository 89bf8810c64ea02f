"""The parameters that several operations share: top_k, ?model=, and the v2 paths' model name and version."""

from __future__ import annotations

from typing import Any

from .served import Served


def top_k_parameter(served: Served) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": 1, "default": 5}
    if served.most_classes is not None:
        schema["maximum"] = served.most_classes
    return {
        "name": "top_k",
        "in": "query",
        "required": False,
        "description": "How many of the most probable classes to return: 1 to the chosen model's class count.",
        "schema": schema,
    }


def model_query(served: Served, what: str) -> dict[str, Any]:
    return {
        "name": "model",
        "in": "query",
        "required": False,
        "description": (
            f"{what}: one of {served.listed()} (without it: `{served.names[0]}`; another name: 404 "
            "`model_not_found`)."
        ),
        "schema": {"type": "string", "enum": served.names, "default": served.names[0]},
    }


def model_name_parameter(served: Served) -> dict[str, Any]:
    return {
        "name": "model_name",
        "in": "path",
        "required": True,
        "description": f"The model's name: one of {served.listed()} (others: 404).",
        "schema": {"type": "string", "enum": served.names},
        "example": served.names[0],
    }


def model_version_parameter(served: Served) -> dict[str, Any]:
    return {
        "name": "model_version",
        "in": "path",
        "required": True,
        "description": f"The model's version: {', '.join(f'`{v}`' for v in served.versions)} (others: 404).",
        "schema": {"type": "string", "enum": served.versions},
        "example": served.versions[0],
    }
