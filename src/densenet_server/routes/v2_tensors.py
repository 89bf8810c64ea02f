"""Open Inference Protocol v2 tensors: parsing a request's inputs and outputs, encoding the answer.

Covers the JSON form of the protocol and Triton's binary tensor data extension (JSON header, then raw
tensor bytes; BYTES elements as a 4-byte little-endian length followed by the bytes) and classification
extension. No Flask here: it takes bytes and gives bytes, and raises ProtocolError for the client's
mistakes. The gRPC service (grpc_v2/) reads its tensors through read_input and requested_output too, so
that both transports accept and refuse the same tensors with the same messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMAGE_INPUT = "image"
PIXELS_INPUT = "pixels"
PROBABILITIES_OUTPUT = "probabilities"
# The binary extension's header: the length of the JSON part of a body that binary data follows.
HEADER_LENGTH = "Inference-Header-Content-Length"
_LENGTH_PREFIX = struct.Struct("<I")


class ProtocolError(ValueError):
    """A malformed or unsupported request; the message says what is wrong (answered with 400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0  # 0: the tensor itself; k: top-k as "<probability>:<index>:<label>"


@dataclass
class InferRequest:
    id: str | None
    # (input name, rows): encoded images (list of bytes) or pixels (float32 [n, 3, crop, crop]).
    inputs: list[tuple[str, list[bytes] | np.ndarray]]
    outputs: list[RequestedOutput] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(rows) for _, rows in self.inputs)


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        size = int(header_length)
    except ValueError:
        raise ProtocolError(f"Inference-Header-Content-Length must be an integer, got {header_length!r}") from None
    if not 0 < size <= len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length {size} does not fit the {len(body)}-byte body"
        )
    return body[:size], body[size:]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ProtocolError(message)


def _parameters(holder: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = holder.get("parameters", {})
    _require(isinstance(parameters, dict), f"{where}: 'parameters' must be an object")
    return parameters


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _shape(tensor: dict[str, Any], where: str) -> list[int]:
    shape = tensor.get("shape")
    _require(
        isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape),
        f"{where}: 'shape' must be a list of non-negative integers",
    )
    return shape


class _BinaryReader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._offset = 0

    def take(self, size: Any, where: str) -> bytes:
        _require(
            isinstance(size, int) and not isinstance(size, bool) and size >= 0,
            f"{where}: 'binary_data_size' must be a non-negative integer",
        )
        _require(
            self._offset + size <= len(self._data),
            f"{where}: binary_data_size {size} runs past the end of the binary data",
        )
        chunk = bytes(self._data[self._offset : self._offset + size])
        self._offset += size
        return chunk

    def check_consumed(self) -> None:
        left = len(self._data) - self._offset
        _require(left == 0, f"{left} bytes of binary data follow the inputs unclaimed")


def _split_bytes_elements(raw: bytes, where: str) -> list[bytes]:
    elements = []
    offset = 0
    while offset < len(raw):
        _require(offset + 4 <= len(raw), f"{where}: truncated BYTES element length")
        (length,) = _LENGTH_PREFIX.unpack_from(raw, offset)
        offset += 4
        _require(offset + length <= len(raw), f"{where}: BYTES element runs past its binary data")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def join_bytes_elements(elements: Sequence[bytes]) -> bytes:
    """BYTES elements as binary data: each one's 4-byte little-endian length, then its bytes."""
    return b"".join(_LENGTH_PREFIX.pack(len(element)) + element for element in elements)


def _image_input(tensor: dict[str, Any], raw: bytes | None, where: str, elements: list[bytes] | None) -> list[bytes]:
    _require(tensor.get("datatype") == "BYTES", f"{where}: datatype must be BYTES (encoded images)")
    shape = _shape(tensor, where)
    _require(
        len(shape) == 1 or (len(shape) == 2 and shape[1] == 1),
        f"{where}: shape must be [N] (or [N, 1]): one encoded image per element, got {shape}",
    )
    count = shape[0]
    if raw is not None:
        images = _split_bytes_elements(raw, where)
    elif elements is not None:
        images = elements
    else:
        _require("data" in tensor, f"{where}: no 'data' (and no binary_data_size)")
        images = []
        for index, element in enumerate(_flatten(tensor["data"])):
            _require(isinstance(element, str), f"{where}: element {index} must be a base64 string")
            try:
                images.append(base64.b64decode(element, validate=True))
            except (binascii.Error, ValueError):
                raise ProtocolError(f"{where}: element {index} is not valid base64") from None
    _require(len(images) == count, f"{where}: shape says {count} elements, data has {len(images)}")
    return images


def _pixels_input(
    tensor: dict[str, Any], raw: bytes | None, where: str, pixels_shape: tuple[int, int, int]
) -> np.ndarray:
    _require(tensor.get("datatype") == "FP32", f"{where}: datatype must be FP32 (preprocessed pixels)")
    shape = _shape(tensor, where)
    expected = ", ".join(map(str, pixels_shape))
    _require(
        len(shape) == 4 and tuple(shape[1:]) == pixels_shape,
        f"{where}: shape must be [N, {expected}], got {shape}",
    )
    size = math.prod(shape)
    if raw is not None:
        _require(len(raw) == size * 4, f"{where}: {len(raw)} bytes of binary data, expected {size * 4} for shape {shape}")
        pixels = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    else:
        _require("data" in tensor, f"{where}: no 'data' (and no binary_data_size)")
        try:
            values = np.asarray(tensor["data"])
        except ValueError:
            raise ProtocolError(f"{where}: 'data' is not a regular (non-ragged) array of numbers") from None
        _require(
            values.dtype.kind in "fiu",
            f"{where}: 'data' must hold numbers only",
        )
        _require(values.size == size, f"{where}: shape {shape} needs {size} values, data has {values.size}")
        pixels = values.astype(np.float32).reshape(-1)
    _require(bool(np.isfinite(pixels).all()), f"{where}: values must be finite (no NaN or infinity)")
    return pixels.reshape(shape)


def requested_output(tensor: Any, default_binary: bool, index: int, classes: int) -> RequestedOutput:
    """The output ``tensor`` asks for (JSON form: name, parameters), the ``index``-th of the request."""
    where = f"output {index}"
    _require(isinstance(tensor, dict), f"{where} must be an object")
    name = tensor.get("name")
    _require(name == PROBABILITIES_OUTPUT, f"unexpected inference output '{name}'; this model has '{PROBABILITIES_OUTPUT}'")
    parameters = _parameters(tensor, where)
    binary = parameters.get("binary_data", default_binary)
    _require(isinstance(binary, bool), f"{where}: binary_data must be a boolean")
    classification = parameters.get("classification", 0)
    _require(
        isinstance(classification, int) and not isinstance(classification, bool) and 0 <= classification <= classes,
        f"{where}: classification must be an integer from 1 to {classes}",
    )
    for unsupported in ("shared_memory_region", "shared_memory_byte_size"):
        _require(unsupported not in parameters, f"{where}: shared memory is not supported by this server")
    return RequestedOutput(name, binary, classification)


def parse_infer_request(
    body: bytes, header_length: str | None, classes: int, pixels_shape: tuple[int, int, int]
) -> InferRequest:
    """The request to the model with ``classes`` outputs, whose pixels are ``pixels_shape`` [3, crop, crop]."""
    header, binary = _split_body(body, header_length)
    try:
        document = json.loads(header)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"the request is not valid JSON: {exc}") from None
    _require(isinstance(document, dict), "the request must be a JSON object")
    request_id = document.get("id")
    _require(request_id is None or isinstance(request_id, str), "'id' must be a string")
    parameters = _parameters(document, "request")
    binary_output = parameters.get("binary_data_output", False)
    _require(isinstance(binary_output, bool), "request parameter binary_data_output must be a boolean")

    tensors = document.get("inputs")
    _require(isinstance(tensors, list) and len(tensors) > 0, "'inputs' must be a non-empty list")
    reader = _BinaryReader(binary)
    inputs: list[tuple[str, list[bytes] | np.ndarray]] = []
    for index, tensor in enumerate(tensors):
        _require(isinstance(tensor, dict), f"input {index} must be an object")
        where = f"input '{tensor.get('name')}'"
        input_parameters = _parameters(tensor, where)
        raw = reader.take(input_parameters["binary_data_size"], where) if "binary_data_size" in input_parameters else None
        inputs.append(read_input(tensor, raw, pixels_shape))
    reader.check_consumed()

    requested = document.get("outputs")
    if requested is None:
        outputs = [RequestedOutput(PROBABILITIES_OUTPUT, binary_output)]
    else:
        _require(isinstance(requested, list), "'outputs' must be a list")
        outputs = [requested_output(tensor, binary_output, index, classes) for index, tensor in enumerate(requested)]
    return checked_request(InferRequest(request_id, inputs, outputs))


def read_input(
    tensor: dict[str, Any], raw: bytes | None, pixels_shape: tuple[int, int, int], elements: list[bytes] | None = None
) -> tuple[str, list[bytes] | np.ndarray]:
    """The input ``tensor`` (JSON form: name, datatype, shape, data) as (name, rows), its values from
    ``raw`` bytes when given (binary data; gRPC's raw_input_contents), else BYTES ``elements`` (gRPC's
    bytes_contents), else its 'data'."""
    name = tensor.get("name")
    where = f"input '{name}'"
    if name == IMAGE_INPUT:
        return name, _image_input(tensor, raw, where, elements)
    if name == PIXELS_INPUT:
        return name, _pixels_input(tensor, raw, where, pixels_shape)
    raise ProtocolError(
        f"unexpected inference input '{name}'; this model takes '{IMAGE_INPUT}' (BYTES) and/or '{PIXELS_INPUT}' (FP32)"
    )


def checked_request(request: InferRequest) -> InferRequest:
    """``request``, once it is known to hold each input once and at least one row."""
    names = [name for name, _ in request.inputs]
    for name in names:
        _require(names.count(name) == 1, f"input '{name}' is given twice")
    _require(request.rows > 0, "the inputs hold no images")
    return request


def classification_strings(probabilities: np.ndarray, k: int, labels: Sequence[str]) -> list[bytes]:
    """Triton's classification extension: "<value>:<index>:<label>", most probable first, per row."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        f"{probabilities[row, index]:f}:{index}:{labels[index]}".encode()
        for row in range(len(probabilities))
        for index in order[row]
    ]


def encode_infer_response(
    request: InferRequest,
    probabilities: np.ndarray,
    labels: Sequence[str],
    model_name: str,
    model_version: str,
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it (else None)."""
    rows = len(probabilities)
    outputs: list[dict[str, Any]] = []
    binary_parts: list[bytes] = []
    for requested in request.outputs:
        output: dict[str, Any] = {"name": requested.name}
        if requested.classification:
            strings = classification_strings(probabilities, requested.classification, labels)
            output.update(datatype="BYTES", shape=[rows, requested.classification])
            if requested.binary:
                raw = join_bytes_elements(strings)
            else:
                output["data"] = [s.decode() for s in strings]
        else:
            values = probabilities.astype(np.float32)
            output.update(datatype="FP32", shape=list(values.shape))
            if requested.binary:
                raw = values.astype("<f4").tobytes()
            else:
                output["data"] = values.reshape(-1).tolist()
        if requested.binary:
            output["parameters"] = {"binary_data_size": len(raw)}
            binary_parts.append(raw)
        outputs.append(output)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        document["id"] = request.id
    document["outputs"] = outputs
    header = json.dumps(document, separators=(",", ":")).encode()
    if not binary_parts:
        return header, None
    return header + b"".join(binary_parts), len(header)
