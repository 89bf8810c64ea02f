"""The component schemas of the Open Inference Protocol v2 answers and requests."""

from __future__ import annotations

from typing import Any

from .answers import ref
from .served import Served


def v2_schemas(served: Served) -> dict[str, Any]:
    tensor_meta = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    parameters = {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    }
    return {
        "V2ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "V2TensorMetadata": tensor_meta,
        "V2ServerLive": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
        "V2ServerReady": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
        "V2ModelReady": {
            "type": "object",
            "required": ["name", "ready"],
            "properties": {"name": {"type": "string", "enum": served.names}, "ready": {"type": "boolean"}},
        },
        "V2RepositoryIndexRequest": {
            "type": "object",
            "properties": {"ready": {"type": "boolean", "description": "true: only the models that are ready"}},
        },
        "V2RepositoryIndex": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "version", "state"],
                "properties": {
                    "name": {"type": "string", "enum": served.names},
                    "version": {"type": "string"},
                    "state": {"type": "string", "enum": ["READY", "UNAVAILABLE"]},
                    "reason": {"type": "string", "description": "Why it is unavailable: loading, or shutting down"},
                },
            },
        },
        "V2ModelMetadata": {
            "type": "object",
            "required": ["name", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": ref("V2TensorMetadata")},
                "outputs": {"type": "array", "items": ref("V2TensorMetadata")},
            },
        },
        "V2Parameters": parameters,
        "V2RequestInput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string", "enum": ["image", "pixels"]},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "datatype": {"type": "string", "enum": ["BYTES", "FP32"]},
                "parameters": ref("V2Parameters"),
                "data": {"type": "array", "description": "Flat or nested; BYTES elements are base64 strings"},
            },
        },
        "V2RequestOutput": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": ref("V2Parameters")},
        },
        "V2InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": ref("V2Parameters"),
                "inputs": {"type": "array", "items": ref("V2RequestInput")},
                "outputs": {"type": "array", "items": ref("V2RequestOutput")},
            },
        },
        "V2ResponseOutput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "parameters": ref("V2Parameters"),
                "data": {"type": "array"},
            },
        },
        "V2InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "parameters": ref("V2Parameters"),
                "outputs": {"type": "array", "items": ref("V2ResponseOutput")},
            },
        },
    }
