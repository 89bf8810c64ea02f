"""How the document writes an answer: JSON bodies, references to the component schemas, and the two error
forms (the seed API's `{"error": {"code", "message"}}`, and /v2's own `{"error": "..."}`)."""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def error_answer(description: str, retry_after: bool = False) -> dict[str, Any]:
    headers = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait before retrying"}}
    return json_answer(ref("Error"), description, headers if retry_after else None)


def v2_error_answer(description: str) -> dict[str, Any]:
    return json_answer(ref("V2Error"), description)


def error_schemas() -> dict[str, Any]:
    """The schemas of the two error forms."""
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    }
