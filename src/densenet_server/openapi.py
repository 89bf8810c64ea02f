"""The OpenAPI 3.1 document of every route, served at /openapi.json and rendered by /docs.

Written by hand (rather than generated from the code) so that it can say what each route means; the
tests check that every Flask route appears here and that answers conform to it. What depends on the served
models (their names, versions, the largest class count) comes from their summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__
from .access_policy import open_paths
from .backends.registry import BACKENDS, NAMES
from .config import Settings
from .errors import is_v2_path
from .model_summary import ModelSummary
from .precision import PRECISIONS

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    headers = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait before retrying"}}
    return _json(_ref("Error"), description, headers if retry_after else None)


def _v2_error(description: str) -> dict[str, Any]:
    return _json(_ref("V2Error"), description)


@dataclass(frozen=True)
class _Served:
    """What the document says of the served models."""

    names: list[str]  # the default first
    versions: list[str]
    # The largest class count, the bound of top_k and of a class index; None until every model is loaded.
    most_classes: int | None

    @classmethod
    def of(cls, models: Sequence[ModelSummary]) -> _Served:
        counts = [model.classes for model in models]
        known = [count for count in counts if count is not None]
        most = max(known) if known and len(known) == len(counts) else None
        return cls([model.name for model in models], sorted({model.version for model in models}), most)

    def listed(self) -> str:
        return ", ".join(f"`{name}`" for name in self.names)


def _top_k(served: _Served) -> dict[str, Any]:
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


def _model_query(served: _Served, what: str) -> dict[str, Any]:
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


def _model_name(served: _Served) -> dict[str, Any]:
    return {
        "name": "model_name",
        "in": "path",
        "required": True,
        "description": f"The model's name: one of {served.listed()} (others: 404).",
        "schema": {"type": "string", "enum": served.names},
        "example": served.names[0],
    }


def _model_version(served: _Served) -> dict[str, Any]:
    return {
        "name": "model_version",
        "in": "path",
        "required": True,
        "description": f"The model's version: {', '.join(f'`{v}`' for v in served.versions)} (others: 404).",
        "schema": {"type": "string", "enum": served.versions},
        "example": served.versions[0],
    }


_CLASSIFY_ERRORS = {
    "400": _error("`invalid_image` (empty, truncated, not an image) or `invalid_argument` (top_k)"),
    "413": _error("`image_too_large`: more pixels than --max-image-pixels (or a folder's file over --max-body-bytes)"),
    "415": _error("`unsupported_image_format`: an image format the server does not accept"),
    "503": _error("`not_ready` (model loading), `overloaded` (queue full) or `shutting_down`", True),
    "504": _error("`deadline_exceeded`: the request's deadline (--request-timeout-s) passed"),
}
# An 8x8 orange PNG: a real image, so that the example request is one the server accepts.
_EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mM8UaHBgA0wMeAAg1MCAB4nAXgllso1AAAAAElFTkSuQmCC"
BEARER_SCHEME = "bearerAuth"


def _health_v2(schema: str, false_means: str) -> dict[str, Any]:
    """A health answer: the status is the answer (Triton's dialect), the body KServe's."""
    return {
        "200": _json(_ref(schema), "true"),
        "400": _json(_ref(schema), f"false: {false_means}"),
    }


def _v2_model_paths(prefix: str, versioned: bool, served: _Served) -> dict[str, Any]:
    parameters = [_model_name(served), _model_version(served)] if versioned else [_model_name(served)]
    tag = ["Open Inference Protocol v2"]
    suffix = " of one version" if versioned else ""
    return {
        prefix: {
            "get": {
                "tags": tag,
                "summary": f"Model metadata{suffix}: inputs, outputs, platform, versions",
                "operationId": "v2ModelMetadata" + ("Versioned" if versioned else ""),
                "parameters": parameters,
                "responses": {
                    "200": _json(_ref("V2ModelMetadata"), "The model's metadata"),
                    "404": _v2_error("No such model (or version)"),
                },
            }
        },
        prefix + "/ready": {
            "get": {
                "tags": tag,
                "summary": f"Model ready{suffix}",
                "operationId": "v2ModelReady" + ("Versioned" if versioned else ""),
                "parameters": parameters,
                "responses": {
                    **_health_v2("V2ModelReady", "the model is still loading, or the server is shutting down"),
                    "404": _v2_error("No such model (or version)"),
                },
            }
        },
        prefix + "/infer": {
            "post": {
                "tags": tag,
                "summary": f"Inference{suffix} (JSON, or JSON plus binary tensor data)",
                "description": (
                    "Inputs: `image` (BYTES, shape [N]: encoded images, base64 strings in JSON) and/or "
                    "`pixels` (FP32, shape [N, 3, crop, crop]: preprocessed, normalised pixels, flat or "
                    "nested; the model's metadata gives its crop size). With both, the rows of the batch "
                    "follow the order of `inputs`.\n\n"
                    "Output: `probabilities` (FP32 [N, classes]: a softmax, or for a multi-label model "
                    "each class's sigmoid). With the output parameter "
                    "`classification: k` (Triton's classification extension) it is BYTES [N, k] of "
                    '`"<probability>:<index>:<label>"`, most probable first.\n\n'
                    "Binary tensor data extension: with the header `Inference-Header-Content-Length: "
                    "<size of the JSON>`, input data follows the JSON (`parameters.binary_data_size` per "
                    "input; BYTES elements as 4-byte little-endian length + bytes). Outputs requested "
                    "with `binary_data: true` (or request parameter `binary_data_output: true`) are "
                    "answered the same way."
                ),
                "operationId": "v2Infer" + ("Versioned" if versioned else ""),
                "parameters": parameters,
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": _ref("V2InferRequest"),
                            "example": {
                                "id": "42",
                                "inputs": [
                                    {"name": "image", "shape": [1], "datatype": "BYTES", "data": [_EXAMPLE_PNG]}
                                ],
                                "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
                            },
                        },
                        # The binary tensor data form (JSON header, then raw tensor bytes, with the
                        # Inference-Header-Content-Length header) is described above: a body schema cannot.
                    },
                },
                "responses": {
                    "200": {
                        "description": "The outputs (JSON; or JSON then binary data when binary outputs were requested)",
                        "content": {
                            JSON: {"schema": _ref("V2InferResponse")},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "400": _v2_error(
                        "A malformed request, an unknown input or output, an unreadable image, or more images "
                        "than --max-images-per-request"
                    ),
                    "404": _v2_error("No such model (or version)"),
                    "413": _v2_error("The body is larger than --max-body-bytes"),
                    "503": _v2_error("The model is loading, the queue is full, or the server is stopping"),
                    "504": _v2_error("Inference did not finish within --request-timeout-s"),
                },
            }
        },
    }


def _schemas(served: _Served) -> dict[str, Any]:
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
                "top_k": {"type": "array", "items": _ref("Prediction")},
                "labels": {
                    "type": "array",
                    "items": _ref("Prediction"),
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
                                    _ref("Classification"),
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
                    "items": _ref("ServedModel"),
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
                "inputs": {"type": "array", "items": _ref("V2TensorMetadata")},
                "outputs": {"type": "array", "items": _ref("V2TensorMetadata")},
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
                "parameters": _ref("V2Parameters"),
                "data": {"type": "array", "description": "Flat or nested; BYTES elements are base64 strings"},
            },
        },
        "V2RequestOutput": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": _ref("V2Parameters")},
        },
        "V2InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": _ref("V2Parameters"),
                "inputs": {"type": "array", "items": _ref("V2RequestInput")},
                "outputs": {"type": "array", "items": _ref("V2RequestOutput")},
            },
        },
        "V2ResponseOutput": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string"},
                "parameters": _ref("V2Parameters"),
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
                "parameters": _ref("V2Parameters"),
                "outputs": {"type": "array", "items": _ref("V2ResponseOutput")},
            },
        },
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


def _v2_repository_paths(served: _Served) -> dict[str, Any]:
    tag = ["Open Inference Protocol v2"]
    refused = {
        "400": _v2_error("Refused: the models are loaded at start-up"),
        "404": _v2_error("No such model"),
    }
    return {
        "/v2/repository/index": {
            "post": {
                "tags": tag,
                "summary": "Model repository index: every served model, its version and state",
                "description": (
                    "The repository extension as Triton defines it (tritonclient's get_model_repository_index): "
                    'an empty body lists every model; `{"ready": true}` only the ready ones.'
                ),
                "operationId": "v2RepositoryIndex",
                "requestBody": {
                    "required": False,
                    "content": {JSON: {"schema": _ref("V2RepositoryIndexRequest")}},
                },
                "responses": {
                    "200": _json(_ref("V2RepositoryIndex"), "One entry per served model, the default first"),
                    "400": _v2_error("The body is not a JSON object with an optional boolean `ready`"),
                    "413": _v2_error("The body is larger than --max-body-bytes"),
                },
            }
        },
        **{
            f"/v2/repository/models/{{model_name}}/{action}": {
                "post": {
                    "tags": tag,
                    "summary": f"Model {action}: refused, as the models are loaded at start-up",
                    "operationId": f"v2Repository{action.capitalize()}",
                    "parameters": [_model_name(served)],
                    "responses": refused,
                }
            }
            for action in ("load", "unload")
        },
    }


def _index_bound(served: _Served) -> dict[str, int]:
    return {} if served.most_classes is None else {"maximum": served.most_classes - 1}


def openapi_document(
    settings: Settings, models: Sequence[ModelSummary], keys_required: bool = False, metrics_open: bool = False
) -> dict[str, Any]:
    """The document of a server with these ``settings`` serving ``models`` (the default first);
    ``keys_required``: its protected operations need an API key (``metrics_open``: /metrics does not)."""
    served = _Served.of(models)
    html = {"text/html": {"schema": {"type": "string"}}}
    model_not_found = _error("`model_not_found`: ?model= names no served model")
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["Seed"],
                "summary": "Liveness: the process answers (also while the models load); the served models",
                "operationId": "liveness",
                "parameters": [_model_query(served, "The model that `model` and `ready` report on")],
                "responses": {"200": _json(_ref("Liveness"), "The server is up"), "404": model_not_found},
            }
        },
        "/ready": {
            "get": {
                "tags": ["Seed"],
                "summary": "Readiness: 200 while every model is loaded and warm and the server is not shutting down",
                "operationId": "readiness",
                "parameters": [_model_query(served, "Only this model's readiness")],
                "responses": {
                    "200": _json(_ref("Readiness"), "Ready"),
                    "404": model_not_found,
                    "503": _error("`not_ready` (a model is still loading) or `shutting_down` (SIGTERM received)", True),
                },
            }
        },
        "/inference/{filename}": {
            "get": {
                "tags": ["Seed"],
                "summary": "Classify a file of the server's images folder",
                "operationId": "classifyFile",
                "parameters": [
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "description": "Path inside the images folder (sub-folders allowed; never outside it)",
                        "schema": {"type": "string"},
                        "example": "cat.jpg",
                    },
                    _model_query(served, "The model that classifies it"),
                    _top_k(served),
                ],
                "responses": {
                    "200": _json(_ref("Classification"), "The top-k classes"),
                    **_CLASSIFY_ERRORS,
                    "400": _error("`invalid_path`, `invalid_image` or `invalid_argument`"),
                    "404": _error(
                        "`image_not_found` (put the image into the images folder) or `model_not_found` (?model= "
                        "names no served model)"
                    ),
                },
            }
        },
        "/inference": {
            "post": {
                "tags": ["Uploads"],
                "summary": "Classify uploaded images: multipart `file` parts, or a raw image body",
                "description": (
                    "One image: the same answer as GET /inference/{filename}. Several `file` parts: "
                    "`{\"results\": [...]}` in order, each its classification or its own error. "
                    f"At most --max-images-per-request ({settings.max_images_per_request}) images and "
                    f"--max-body-bytes ({settings.max_body_bytes}) bytes per request."
                ),
                "operationId": "classifyUploads",
                "parameters": [_model_query(served, "The model that classifies them"), _top_k(served)],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                        "minItems": 1,
                                        "maxItems": settings.max_images_per_request,
                                    }
                                },
                            },
                            "encoding": {"file": {"contentType": "image/*, application/octet-stream"}},
                        },
                        "image/*": {"schema": {"type": "string", "format": "binary"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "responses": {
                    "200": _json(
                        {"oneOf": [_ref("Classification"), _ref("UploadResults")]},
                        "One image: its classification; several: their results in order",
                    ),
                    **_CLASSIFY_ERRORS,
                    "400": _error(
                        "`missing_file` (no image in the request), `too_many_images` (more than "
                        "--max-images-per-request), `invalid_image` or `invalid_argument`"
                    ),
                    "404": model_not_found,
                    "413": _error("`payload_too_large` (body over --max-body-bytes) or `image_too_large`"),
                    "415": _error("`unsupported_media_type` (not multipart, image/* or octet-stream) or `unsupported_image_format`"),
                },
            }
        },
        "/v2": {
            "get": {
                "tags": ["Open Inference Protocol v2"],
                "summary": "Server metadata",
                "operationId": "v2ServerMetadata",
                "responses": {"200": _json(_ref("V2ServerMetadata"), "Name, version and extensions")},
            }
        },
        "/v2/health/live": {
            "get": {
                "tags": ["Open Inference Protocol v2"],
                "summary": "Server live",
                "operationId": "v2ServerLive",
                "responses": {"200": _json(_ref("V2ServerLive"), "true")},
            }
        },
        "/v2/health/ready": {
            "get": {
                "tags": ["Open Inference Protocol v2"],
                "summary": "Server ready (every model is loaded and warm)",
                "operationId": "v2ServerReady",
                "responses": _health_v2("V2ServerReady", "a model is still loading, or the server is shutting down"),
            }
        },
        **_v2_model_paths("/v2/models/{model_name}", versioned=False, served=served),
        **_v2_model_paths("/v2/models/{model_name}/versions/{model_version}", versioned=True, served=served),
        **_v2_repository_paths(served),
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
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document")},
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
                    "404": _error("`not_found`: no such asset"),
                },
            }
        },
    }
    components: dict[str, Any] = {"schemas": _schemas(served)}
    if keys_required:
        components["securitySchemes"] = {BEARER_SCHEME: _bearer_scheme()}
        _require_key(paths, metrics_open)
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


def _bearer_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An API key of the server's --api-keys-file, sent as `Authorization: Bearer <key>`. Without a "
            "valid one a protected operation answers 401 `unauthorized` with `WWW-Authenticate: Bearer`."
        ),
    }


def _require_key(paths: dict[str, Any], metrics_open: bool) -> None:
    """This server has API keys: every operation but the open ones (access_policy) requires one and may
    answer 401, in the error form of its path."""
    challenge = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="densenet-server"'}}
    unopened = {path: operations for path, operations in paths.items() if path not in open_paths(metrics_open)}
    for path, operations in unopened.items():
        refused = _json(
            _ref("V2Error" if is_v2_path(path) else "Error"),
            "`unauthorized`: no API key, or one the server does not accept",
            challenge,
        )
        for operation in operations.values():
            operation["security"] = [{BEARER_SCHEME: []}]
            operation["responses"]["401"] = refused
