"""The component schemas of the seed API's and the uploads' answers (classifications, liveness, readiness)."""

from __future__ import annotations

from typing import Any

from ..backends.registry import BACKENDS, NAMES
from ..precision import PRECISIONS
from .answers import ref
from .served import Served


def answer_schemas(served: Served) -> dict[str, Any]:
    return {
        "Prediction": {
            "type": "object",
            "required": ["index", "label", "probability"],
            "properties": {
                "index": {"type": "integer", "minimum": 0, **_index_bound(served)},
                "label": {"type": "string"},
                "probability": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "Classification": {
            "type": "object",
            "required": ["class", "index", "probability", "top_k", "model", "weights", "weights_published", "backend", "precision", "device"],
            "properties": {
                "class": {"type": "string", "description": "The most probable class's label"},
                "index": {"type": "integer"},
                "probability": {"type": "number"},
                "top_k": {"type": "array", "items": ref("Prediction")},
                "labels": {
                    "type": "array",
                    "items": ref("Prediction"),
                    "description": "Multi-label models only: every class at or above `threshold`, most probable first",
                },
                "threshold": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "exclusiveMaximum": 1,
                    "description": "Multi-label models only: the probability from which a class is in `labels`",
                },
                "model": {"type": "string", "enum": served.names, "description": "The model that answered"},
                "weights": {"type": "string"},
                "weights_published": {"type": "boolean"},
                "backend": {
                    "type": "string",
                    "enum": list(NAMES),
                    "description": "What ran the forward pass: "
                    + "; ".join(f"{backend.name}, {backend.description}" for backend in BACKENDS),
                },
                "precision": {
                    "type": "string",
                    "enum": [p for p in PRECISIONS if p != "auto"],
                    "description": "fp32 on the CPU unless bf16 was switched on; on CUDA fp16 by default",
                },
                "device": {"type": "string", "description": "What ran the model: cpu, or cuda:N"},
                "warning": {"type": "string", "description": "Present when the weights are not the published ones"},
            },
        },
        "UploadResults": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {
                    "type": "array",
                    "description": "One entry per uploaded file, in order: its classification or its error",
                    "items": {
                        "oneOf": [
                            {
                                "allOf": [
                                    ref("Classification"),
                                    {"type": "object", "required": ["filename"], "properties": {"filename": {"type": "string"}}},
                                ]
                            },
                            {
                                "type": "object",
                                "required": ["filename", "status", "error"],
                                "properties": {
                                    "filename": {"type": "string"},
                                    "status": {"type": "integer"},
                                    "error": {
                                        "type": "object",
                                        "required": ["code", "message"],
                                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                                    },
                                },
                            },
                        ]
                    },
                }
            },
        },
        "Liveness": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "const": "ok"},
                "model": {"type": "string", "description": "The default model (or the one ?model= names)"},
                "ready": {"type": "boolean", "description": "Every model (or the one ?model= names) is ready"},
                "version": {"type": "string"},
                "usage": {"type": "string"},
                "ui": {"type": "string", "description": "Path of the web page"},
                "docs": {"type": "string"},
                "auth": {
                    "type": "string",
                    "enum": ["none", "bearer"],
                    "description": "bearer: every route but /, /ready, /v2/health/*, model readiness and the web page needs `Authorization: Bearer <key>`",
                },
                "layout": {
                    "type": ["object", "null"],
                    "description": "How the server uses the machine: usable CPUs, device, HTTP fronts, inference threads and passes, batch and queue sizes",
                },
                "models": {
                    "type": "array",
                    "description": "Every served model, the default first",
                    "items": ref("ServedModel"),
                },
            },
        },
        "ServedModel": {
            "type": "object",
            "required": ["name", "architecture", "classes", "multi_label", "ready"],
            "properties": {
                "name": {"type": "string", "enum": served.names, "description": "Its name for ?model= and /v2/models/"},
                "architecture": {"type": "string", "description": "torchvision's builder, e.g. densenet121"},
                "classes": {"type": ["integer", "null"], "minimum": 1, "description": "null while it loads"},
                "multi_label": {"type": "boolean"},
                "ready": {"type": "boolean"},
                "backend": {"type": "string", "enum": list(NAMES), "description": "Once loaded"},
                "device": {"type": "string", "description": "Once loaded: cpu, or cuda:N"},
            },
        },
        "Readiness": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "const": "ready"}, "model": {"type": "string"}},
        },
    }


def _index_bound(served: Served) -> dict[str, int]:
    return {} if served.most_classes is None else {"maximum": served.most_classes - 1}

