"""ModelInferRequest -> InferRequest, and probabilities -> ModelInferResponse.

The tensors are read by the REST side's own functions (routes/v2_tensors.py), so that an input is accepted
or refused alike over both transports. Values come from `raw_input_contents` (one entry per input, in
order; BYTES elements 4-byte little-endian length prefixed), which is what tritonclient.grpc sends, or from
each input's typed `contents`. Outputs go back in `raw_output_contents`, as Triton answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tritonclient.grpc import service_pb2 as pb

from ..routes.v2_tensors import (
    PROBABILITIES_OUTPUT,
    InferRequest,
    ProtocolError,
    RequestedOutput,
    checked_request,
    classification_strings,
    join_bytes_elements,
    read_input,
    requested_output,
)

SHARED_MEMORY = "shared_memory_region"


def infer_request(message: pb.ModelInferRequest, classes: int, pixels_shape: tuple[int, int, int]) -> InferRequest:
    """The request to the model with ``classes`` outputs, whose pixels are ``pixels_shape`` [3, crop, crop];
    ProtocolError for a malformed one."""
    raw = message.raw_input_contents
    if not message.inputs:
        raise ProtocolError("the request has no inputs")
    if raw and len(raw) != len(message.inputs):
        raise ProtocolError(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs: give one per input, "
            "in the order of the inputs (or none, and each input's contents)"
        )
    inputs = [_input(tensor, raw[index] if raw else None, pixels_shape) for index, tensor in enumerate(message.inputs)]
    outputs = [
        requested_output({"name": output.name, "parameters": _parameters(output.parameters)}, True, index, classes)
        for index, output in enumerate(message.outputs)
    ] or [RequestedOutput(PROBABILITIES_OUTPUT, binary=True)]
    return checked_request(InferRequest(message.id or None, inputs, outputs))


def _input(
    tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None, pixels_shape: tuple[int, int, int]
) -> tuple[str, list[bytes] | np.ndarray]:
    if SHARED_MEMORY in tensor.parameters:
        raise ProtocolError(f"input '{tensor.name}': shared memory is not supported by this server")
    fields: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
    elements = None
    if raw is None:
        # Each datatype's typed field; a tensor whose datatype is neither is refused by its datatype first.
        elements = list(tensor.contents.bytes_contents)
        fields["data"] = np.asarray(tensor.contents.fp32_contents, dtype=np.float32)
    return read_input(fields, raw, pixels_shape, elements)


def _parameters(parameters: Any) -> dict[str, Any]:
    """A map of InferParameter as plain values (the JSON form's `parameters`)."""
    values = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = getattr(parameter, choice) if choice is not None else None
    return values


def infer_response(
    request: InferRequest, probabilities: np.ndarray, labels: Sequence[str], model_name: str, model_version: str
) -> pb.ModelInferResponse:
    """The answer: each requested output as a tensor whose values are in raw_output_contents."""
    response = pb.ModelInferResponse(model_name=model_name, model_version=model_version, id=request.id or "")
    rows = len(probabilities)
    for requested in request.outputs:
        if requested.classification:
            strings = classification_strings(probabilities, requested.classification, labels)
            datatype, shape, raw = "BYTES", [rows, requested.classification], join_bytes_elements(strings)
        else:
            values = probabilities.astype("<f4")
            datatype, shape, raw = "FP32", list(values.shape), values.tobytes()
        response.outputs.add(name=requested.name, datatype=datatype, shape=shape)
        response.raw_output_contents.append(raw)
    return response
