"""The Open Inference Protocol v2's meaning, whichever transport carries it: which model a request names,
what the server and a model say about themselves, and the probabilities of an inference request.

The REST routes (routes/v2.py) and the gRPC service (grpc_v2/) each turn their wire format into an
InferRequest and call this, so that the two cannot drift apart: the same inputs, limits, errors and
numbers. Errors are the domain's (UnknownModel, UnknownVersion, NotReady, ProtocolError for the client's
mistakes, and whatever the service raises); each transport says them in its own words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import __version__, request_scope
from .backends.loading import chosen_backend
from .backends.registry import BACKENDS
from .decoding import ImageError
from .model_summary import summarize
from .preprocess import normalize
from .routes.v2_tensors import IMAGE_INPUT, PIXELS_INPUT, PROBABILITIES_OUTPUT, InferRequest, ProtocolError
from .served_models import ServedModels
from .service import InferenceService, NotReady

SERVER_NAME = "densenet-server"
EXTENSIONS = ["classification", "binary_tensor_data", "model_repository"]
_PLATFORMS = {backend.name: backend.platform for backend in BACKENDS}


class UnknownVersion(LookupError):
    """The model is served, but not in the version the request names (404 / NOT_FOUND)."""


def chosen_model(models: ServedModels, name: str, version: str | None) -> InferenceService:
    """The model served as ``name`` (of ``version``, when the request names one; "" is none, as gRPC's
    empty string); UnknownModel or UnknownVersion otherwise."""
    chosen = models.get(name)
    served_version = summarize(chosen).version
    if version and version != served_version:
        raise UnknownVersion(f"unknown version '{version}' of model '{name}'; it has version {served_version}")
    return chosen


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}


def model_metadata(chosen: InferenceService) -> dict[str, Any]:
    """The model's metadata: its inputs and outputs with their shapes from its record (while it loads, -1
    for the sizes its checkpoint decides), and, once loaded, how it runs (`parameters`; REST only, as the
    gRPC message has no such field)."""
    pixels_shape, probabilities_shape = _tensor_shapes(chosen)
    return {
        "name": chosen.name,
        "versions": [summarize(chosen).version],
        "platform": _platform(chosen),
        **_serving_parameters(chosen),
        "inputs": [
            {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
            {"name": PIXELS_INPUT, "datatype": "FP32", "shape": pixels_shape},
        ],
        "outputs": [{"name": PROBABILITIES_OUTPUT, "datatype": "FP32", "shape": probabilities_shape}],
    }


def _tensor_shapes(chosen: InferenceService) -> tuple[list[int], list[int]]:
    """The shapes of the `pixels` input and the `probabilities` output, from the model's record; while the
    model loads, its crop size and class count are not read yet: -1, the protocol's "any size"."""
    if not chosen.loaded:
        return [-1, 3, -1, -1], [-1, -1]
    record = chosen.info.record
    return [-1, *record.preprocessing.input_shape], [-1, record.num_classes]


def _serving_parameters(chosen: InferenceService) -> dict[str, Any]:
    """How the model runs (once loaded): backend, precision and device, as every answer reports them."""
    if not chosen.loaded:
        return {}
    info = chosen.info
    return {"parameters": {"backend": info.backend, "precision": info.precision, "device": info.device}}


def _platform(chosen: InferenceService) -> str:
    name = chosen.info.backend if chosen.loaded else chosen_backend(chosen.settings)
    return _PLATFORMS.get(name, name)


def ensure_loaded(chosen: InferenceService) -> None:
    """NotReady (503 / UNAVAILABLE) until the model is loaded. Not `ready`: while the server drains, a
    request that reached it is still served."""
    if not chosen.loaded:
        raise NotReady(f"model '{chosen.name}' is not ready yet; retry once the server reports ready")


def probabilities(chosen: InferenceService, request: InferRequest, max_images: int) -> np.ndarray:
    """Probabilities [rows, classes] of every row of ``request``, in order, after its limit of
    ``max_images`` rows (--max-images-per-request). Images only: the service's image path, as for uploads
    (announced to the batcher, decoded on the GPU where the engine may). With FP32 tensors too: the images
    are decoded here and everything travels as pixels. An unreadable image fails the whole request (the
    protocol has no per-row errors): ProtocolError naming the input and element."""
    if request.rows > max_images:
        raise ProtocolError(
            f"the request holds {request.rows} images; the limit is {max_images} per request (--max-images-per-request)"
        )
    inputs = request.inputs
    if any(isinstance(rows, np.ndarray) for _, rows in inputs):
        return chosen.probabilities(_pixels_of(chosen, inputs))
    tagged = [(name, index, data) for name, rows in inputs for index, data in enumerate(rows)]
    images = [data for _, _, data in tagged]
    request_scope.note_image_bytes(sum(len(data) for data in images))
    outcomes = chosen.image_probabilities(images)
    for (name, index, _), outcome in zip(tagged, outcomes):
        _raise_for_image(name, index, outcome)
    return np.stack(outcomes)


def _raise_for_image(name: str, index: int, outcome: np.ndarray | ImageError) -> None:
    if isinstance(outcome, ImageError):
        raise ProtocolError(f"input '{name}' element {index}: {outcome}") from outcome


def _pixels_of(chosen: InferenceService, inputs: list[tuple[str, list[bytes] | np.ndarray]]) -> np.ndarray:
    """All rows of the request, in the order of its inputs: the images' uint8 crops, or, when the request
    also holds FP32 tensors, normalised float32 pixels throughout."""
    blocks: list[np.ndarray] = []
    for name, rows in inputs:
        if isinstance(rows, np.ndarray):
            blocks.append(rows)
            continue
        request_scope.note_image_bytes(sum(len(data) for data in rows))
        prepared = chosen.prepare_many(rows)
        for index, pixels in enumerate(prepared):
            _raise_for_image(name, index, pixels)
        blocks.append(np.stack(prepared))
    if len({block.dtype for block in blocks}) > 1:
        preprocessing = chosen.info.record.preprocessing
        blocks = [normalize(block, preprocessing) if block.dtype == np.uint8 else block for block in blocks]
    return np.concatenate(blocks)
