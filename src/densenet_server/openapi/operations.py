"""The paths that operate the server: metrics, this document, the docs page, the web page and its assets."""

from __future__ import annotations

from typing import Any

from .answers import error_answer, json_answer


def operations_paths() -> dict[str, Any]:
    html = {"text/html": {"schema": {"type": "string"}}}
    return {
        "/metrics": {
            "get": {
                "tags": ["Operations"],
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["Operations"],
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": json_answer({"type": "object"}, "The OpenAPI document")},
            }
        },
        "/docs": {
            "get": {
                "tags": ["Operations"],
                "summary": "Human-readable API documentation (works offline)",
                "operationId": "docs",
                "responses": {"200": {"description": "HTML page", "content": html}},
            }
        },
        "/ui": {
            "get": {
                "tags": ["Operations"],
                "summary": "Web page: choose or drop an image, see its top-5 classes",
                "operationId": "ui",
                "responses": {"200": {"description": "HTML page", "content": html}},
            }
        },
        "/static/{filename}": {
            "get": {
                "tags": ["Operations"],
                "summary": "Assets of the web page and the docs page",
                "operationId": "staticAsset",
                "parameters": [
                    {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "The file", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": error_answer("`not_found`: no such asset"),
                },
            }
        },
    }
