"""The paths of the Open Inference Protocol v2: server and model health and metadata, inference, and the
repository extension."""

from __future__ import annotations

from typing import Any

from .answers import JSON, json_answer, ref, v2_error_answer
from .parameters import model_name_parameter, model_version_parameter
from .served import Served

# An 8x8 orange PNG: a real image, so that the example request is one the server accepts.
_EXAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mM8UaHBgA0wMeAAg1MCAB4nAXgllso1AAAAAElFTkSuQmCC"


def v2_paths(served: Served) -> dict[str, Any]:
    return {
        "/v2": {
            "get": {
                "tags": ["Open Inference Protocol v2"],
                "summary": "Server metadata",
                "operationId": "v2ServerMetadata",
                "responses": {"200": json_answer(ref("V2ServerMetadata"), "Name, version and extensions")},
            }
        },
        "/v2/health/live": {
            "get": {
                "tags": ["Open Inference Protocol v2"],
                "summary": "Server live",
                "operationId": "v2ServerLive",
                "responses": {"200": json_answer(ref("V2ServerLive"), "true")},
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
        **v2_model_paths("/v2/models/{model_name}", versioned=False, served=served),
        **v2_model_paths("/v2/models/{model_name}/versions/{model_version}", versioned=True, served=served),
        **v2_repository_paths(served),
    }


def _health_v2(schema: str, false_means: str) -> dict[str, Any]:
    """A health answer: the status is the answer (Triton's dialect), the body KServe's."""
    return {
        "200": json_answer(ref(schema), "true"),
        "400": json_answer(ref(schema), f"false: {false_means}"),
    }


def v2_model_paths(prefix: str, versioned: bool, served: Served) -> dict[str, Any]:
    parameters = [model_name_parameter(served), model_version_parameter(served)] if versioned else [model_name_parameter(served)]
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
                    "200": json_answer(ref("V2ModelMetadata"), "The model's metadata"),
                    "404": v2_error_answer("No such model (or version)"),
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
                    "404": v2_error_answer("No such model (or version)"),
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
                            "schema": ref("V2InferRequest"),
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
                            JSON: {"schema": ref("V2InferResponse")},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "400": v2_error_answer(
                        "A malformed request, an unknown input or output, an unreadable image, or more images "
                        "than --max-images-per-request"
                    ),
                    "404": v2_error_answer("No such model (or version)"),
                    "413": v2_error_answer("The body is larger than --max-body-bytes"),
                    "503": v2_error_answer("The model is loading, the queue is full, or the server is stopping"),
                    "504": v2_error_answer("Inference did not finish within --request-timeout-s"),
                },
            }
        },
    }


def v2_repository_paths(served: Served) -> dict[str, Any]:
    tag = ["Open Inference Protocol v2"]
    refused = {
        "400": v2_error_answer("Refused: the models are loaded at start-up"),
        "404": v2_error_answer("No such model"),
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
                    "content": {JSON: {"schema": ref("V2RepositoryIndexRequest")}},
                },
                "responses": {
                    "200": json_answer(ref("V2RepositoryIndex"), "One entry per served model, the default first"),
                    "400": v2_error_answer("The body is not a JSON object with an optional boolean `ready`"),
                    "413": v2_error_answer("The body is larger than --max-body-bytes"),
                },
            }
        },
        **{
            f"/v2/repository/models/{{model_name}}/{action}": {
                "post": {
                    "tags": tag,
                    "summary": f"Model {action}: refused, as the models are loaded at start-up",
                    "operationId": f"v2Repository{action.capitalize()}",
                    "parameters": [model_name_parameter(served)],
                    "responses": refused,
                }
            }
            for action in ("load", "unload")
        },
    }
