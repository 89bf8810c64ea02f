"""The v2 request parser and response encoder, without HTTP: the corners real clients reach.

A refused request's message is the body of the 400 the client gets, so the refusals are asserted by their
whole text, not by a fragment: a message naming the wrong input, or no input, is a wrong answer too.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
import pytest

from densenet_server.routes.v2_tensors import (
    InferRequest,
    ProtocolError,
    RequestedOutput,
    encode_infer_response,
    parse_infer_request,
)

PIXELS_SHAPE = (3, 224, 224)  # DenseNet-121's; test_pixels_shape_is_the_models checks another
PIXELS_SIZE = 3 * 224 * 224


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_tensor(**changes: Any) -> dict[str, Any]:
    """A valid JSON "image" input of one element, with some fields changed (None removes one)."""
    tensor: dict[str, Any] = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(b"img")]}
    tensor.update(changes)
    return {key: value for key, value in tensor.items() if value is not None}


def pixels_tensor(**changes: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": "pixels", "shape": [1, 3, 224, 224], "datatype": "FP32"}
    tensor.update(changes)
    return {key: value for key, value in tensor.items() if value is not None}


def binary_request(header: dict, payload: bytes) -> tuple[bytes, str]:
    encoded = json.dumps(header).encode()
    return encoded + payload, str(len(encoded))


def parse(document: Any, classes: int = 1000, pixels_shape: tuple[int, int, int] = PIXELS_SHAPE) -> InferRequest:
    return parse_infer_request(json.dumps(document).encode(), None, classes, pixels_shape)


def refusal(
    body: bytes, header_length: str | None = None, classes: int = 1000, pixels_shape: tuple[int, int, int] = PIXELS_SHAPE
) -> str:
    with pytest.raises(ProtocolError) as caught:
        parse_infer_request(body, header_length, classes, pixels_shape)
    assert caught.value.status == 400
    return str(caught.value)


def test_bytes_input_nested_json_of_shape_n_by_1() -> None:
    data = [[b64(b"one")], [b64(b"two")]]
    request = parse({"inputs": [image_tensor(shape=[2, 1], data=data)]})
    assert request.inputs == [("image", [b"one", b"two"])]
    assert request.rows == 2
    # No "outputs": the probabilities tensor, as JSON unless the request asks for binary.
    assert request.outputs == [RequestedOutput("probabilities", False, 0)]
    assert request.id is None


def test_binary_bytes_and_fp32_inputs_in_order() -> None:
    elements = b"".join(struct.pack("<I", len(x)) + x for x in (b"abc", b""))
    pixels = np.arange(PIXELS_SIZE, dtype="<f4")
    header = {
        "id": "req-1",
        "inputs": [
            {"name": "image", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(elements)}},
            {"name": "pixels", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": {"binary_data_size": pixels.nbytes}},
        ],
        "parameters": {"binary_data_output": True},
    }
    body, length = binary_request(header, elements + pixels.tobytes())
    request = parse_infer_request(body, length, 1000, PIXELS_SHAPE)
    assert request.id == "req-1"
    assert request.inputs[0] == ("image", [b"abc", b""])
    name, parsed = request.inputs[1]
    assert name == "pixels" and isinstance(parsed, np.ndarray) and parsed.dtype == np.float32
    np.testing.assert_array_equal(parsed, pixels.reshape(1, 3, 224, 224))
    assert request.rows == 3
    assert request.outputs == [RequestedOutput("probabilities", True, 0)]


def test_json_pixels_nested_or_flat_and_integers_become_float32() -> None:
    values = (np.arange(PIXELS_SIZE) % 7).reshape(1, 3, 224, 224)
    for data in (values.tolist(), values.reshape(-1).tolist()):
        request = parse({"inputs": [pixels_tensor(data=data)]})
        (name, pixels), = request.inputs
        assert name == "pixels" and isinstance(pixels, np.ndarray)
        assert pixels.dtype == np.float32 and pixels.shape == (1, 3, 224, 224)
        np.testing.assert_array_equal(pixels, values.astype(np.float32))


def test_pixels_shape_is_the_models() -> None:
    """Another model's crop size: its pixels are accepted, DenseNet's 224 refused with the model's shape."""
    values = np.arange(3 * 8 * 8, dtype=np.float32)
    request = parse({"inputs": [pixels_tensor(shape=[1, 3, 8, 8], data=values.tolist())]}, pixels_shape=(3, 8, 8))
    np.testing.assert_array_equal(request.inputs[0][1], values.reshape(1, 3, 8, 8))
    document = {"inputs": [pixels_tensor(data=[0.0] * PIXELS_SIZE)]}
    message = refusal(json.dumps(document).encode(), pixels_shape=(3, 8, 8))
    assert message == "input 'pixels': shape must be [N, 3, 8, 8], got [1, 3, 224, 224]"


def test_a_header_length_of_the_whole_body_means_no_binary_data() -> None:
    body = json.dumps({"inputs": [image_tensor()]}).encode()
    request = parse_infer_request(body, str(len(body)), 1000, PIXELS_SHAPE)
    assert request.inputs == [("image", [b"img"])]


def test_empty_inputs_are_allowed_beside_others() -> None:
    """Shape 0 and binary_data_size 0 are valid: the request still has one image."""
    header = {"inputs": [pixels_tensor(shape=[0, 3, 224, 224], parameters={"binary_data_size": 0}), image_tensor()]}
    body, length = binary_request(header, b"")
    request = parse_infer_request(body, length, 1000, PIXELS_SHAPE)
    assert request.rows == 1
    assert request.inputs[0][1].shape == (0, 3, 224, 224)


def test_outputs_inherit_the_request_default_unless_they_say_otherwise() -> None:
    document = {
        "parameters": {"binary_data_output": True},
        "inputs": [image_tensor()],
        "outputs": [
            {"name": "probabilities"},
            {"name": "probabilities", "parameters": {"binary_data": False, "classification": 1000}},
            {"name": "probabilities", "parameters": {"classification": 0}},
        ],
    }
    assert parse(document).outputs == [
        RequestedOutput("probabilities", True, 0),
        RequestedOutput("probabilities", False, 1000),
        RequestedOutput("probabilities", True, 0),
    ]


def test_protocol_errors_answer_400_by_default() -> None:
    assert ProtocolError("bad").status == 400
    assert ProtocolError("bad", 413).status == 413


NO_IMAGES = {"inputs": [image_tensor(shape=[0], data=[])]}
SHAPE_RULE = "input 'image': 'shape' must be a list of non-negative integers"
CLASSIFICATION_RULE = "output 0: classification must be an integer from 1 to 1000"
SHARED_MEMORY = "output 1: shared memory is not supported by this server"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the request must be a JSON object"),
        ({"id": 5, "inputs": [image_tensor()]}, "'id' must be a string"),
        ({"parameters": [], "inputs": [image_tensor()]}, "request: 'parameters' must be an object"),
        (
            {"parameters": {"binary_data_output": 1}, "inputs": [image_tensor()]},
            "request parameter binary_data_output must be a boolean",
        ),
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({"inputs": {"image": 1}}, "'inputs' must be a non-empty list"),
        ({}, "'inputs' must be a non-empty list"),
        ({"inputs": ["image"]}, "input 0 must be an object"),
        ({"inputs": [image_tensor(), image_tensor()]}, "input 'image' is given twice"),
        ({"inputs": [image_tensor(parameters=3)]}, "input 'image': 'parameters' must be an object"),
        (
            {"inputs": [{"name": "tokens", "shape": [1], "datatype": "BYTES", "data": ["eA=="]}]},
            "unexpected inference input 'tokens'; this model takes 'image' (BYTES) and/or 'pixels' (FP32)",
        ),
        (NO_IMAGES, "the inputs hold no images"),
        ({"inputs": [image_tensor(datatype="FP32")]}, "input 'image': datatype must be BYTES (encoded images)"),
        ({"inputs": [image_tensor(shape={})]}, SHAPE_RULE),
        ({"inputs": [image_tensor(shape=None)]}, SHAPE_RULE),
        ({"inputs": [image_tensor(shape=[-1])]}, SHAPE_RULE),
        ({"inputs": [image_tensor(shape=[True])]}, SHAPE_RULE),
        ({"inputs": [image_tensor(shape=[1.0])]}, SHAPE_RULE),
        (
            {"inputs": [image_tensor(shape=[2, 2], data=["eA=="] * 4)]},
            "input 'image': shape must be [N] (or [N, 1]): one encoded image per element, got [2, 2]",
        ),
        (
            {"inputs": [image_tensor(shape=[1, 1, 1])]},
            "input 'image': shape must be [N] (or [N, 1]): one encoded image per element, got [1, 1, 1]",
        ),
        ({"inputs": [image_tensor(data=None)]}, "input 'image': no 'data' (and no binary_data_size)"),
        ({"inputs": [image_tensor(data=[5])]}, "input 'image': element 0 must be a base64 string"),
        # Characters outside the alphabet: a lenient decoder would drop them and classify something else.
        ({"inputs": [image_tensor(shape=[2], data=["eA==", "aGk=!"])]}, "input 'image': element 1 is not valid base64"),
        ({"inputs": [image_tensor(shape=[2])]}, "input 'image': shape says 2 elements, data has 1"),
        (
            {"inputs": [pixels_tensor(datatype="BYTES", data=[0])]},
            "input 'pixels': datatype must be FP32 (preprocessed pixels)",
        ),
        (
            {"inputs": [pixels_tensor(shape=[1, 3, 224, 225], data=[0])]},
            "input 'pixels': shape must be [N, 3, 224, 224], got [1, 3, 224, 225]",
        ),
        (
            {"inputs": [pixels_tensor(shape=[3, 224, 224], data=[0])]},
            "input 'pixels': shape must be [N, 3, 224, 224], got [3, 224, 224]",
        ),
        (
            {"inputs": [pixels_tensor(shape=[1, 3, 224, -224], data=[0])]},
            "input 'pixels': 'shape' must be a list of non-negative integers",
        ),
        ({"inputs": [pixels_tensor()]}, "input 'pixels': no 'data' (and no binary_data_size)"),
        (
            {"inputs": [pixels_tensor(data=[[1, 2], [3]])]},
            "input 'pixels': 'data' is not a regular (non-ragged) array of numbers",
        ),
        ({"inputs": [pixels_tensor(data=["a"])]}, "input 'pixels': 'data' must hold numbers only"),
        ({"inputs": [pixels_tensor(data=[True])]}, "input 'pixels': 'data' must hold numbers only"),
        (
            {"inputs": [pixels_tensor(data=[0.0] * 5)]},
            "input 'pixels': shape [1, 3, 224, 224] needs 150528 values, data has 5",
        ),
        (
            {"inputs": [pixels_tensor(data=[0.0] * (PIXELS_SIZE - 1) + [float("inf")])]},
            "input 'pixels': values must be finite (no NaN or infinity)",
        ),
        ({"inputs": [image_tensor()], "outputs": {}}, "'outputs' must be a list"),
        ({"inputs": [image_tensor()], "outputs": ["probabilities"]}, "output 0 must be an object"),
        (
            {"inputs": [image_tensor()], "outputs": [{"name": "logits"}]},
            "unexpected inference output 'logits'; this model has 'probabilities'",
        ),
        (
            {"inputs": [image_tensor()], "outputs": [{"name": "probabilities", "parameters": []}]},
            "output 0: 'parameters' must be an object",
        ),
        (
            {"inputs": [image_tensor()], "outputs": [{"name": "probabilities", "parameters": {"binary_data": "yes"}}]},
            "output 0: binary_data must be a boolean",
        ),
        *[
            (
                {"inputs": [image_tensor()], "outputs": [{"name": "probabilities", "parameters": {"classification": k}}]},
                CLASSIFICATION_RULE,
            )
            for k in (True, -1, 1001, "2")
        ],
        *[
            (
                {
                    "inputs": [image_tensor()],
                    "outputs": [{"name": "probabilities"}, {"name": "probabilities", "parameters": {key: 1}}],
                },
                SHARED_MEMORY,
            )
            for key in ("shared_memory_region", "shared_memory_byte_size")
        ],
    ],
)
def test_refused_requests_say_exactly_what_is_wrong(document: Any, message: str) -> None:
    assert refusal(json.dumps(document).encode()) == message


@pytest.mark.parametrize(
    ("header_length", "message"),
    [
        ("abc", "Inference-Header-Content-Length must be an integer, got 'abc'"),
        ("0", "Inference-Header-Content-Length 0 does not fit the {size}-byte body"),
        ("{over}", "Inference-Header-Content-Length {over} does not fit the {size}-byte body"),
    ],
)
def test_header_length_must_fit_the_body(header_length: str, message: str) -> None:
    body = json.dumps({"inputs": [image_tensor()]}).encode()
    fields = {"size": len(body), "over": len(body) + 1}
    assert refusal(body, header_length.format(**fields)) == message.format(**fields)


def test_a_header_that_is_not_json_is_refused_as_such() -> None:
    # A one-byte header is allowed by the length rule; "{" alone is then not JSON.
    assert refusal(b'{"inputs": []}', "1").startswith("the request is not valid JSON: ")
    assert refusal(b"\xff\xfe").startswith("the request is not valid JSON: ")


@pytest.mark.parametrize(
    ("name", "shape", "datatype", "payload", "size", "message"),
    [
        ("image", [1], "BYTES", struct.pack("<I", 10) + b"abc", 7, "input 'image': BYTES element runs past its binary data"),
        ("image", [1], "BYTES", b"\x01\x00", 2, "input 'image': truncated BYTES element length"),
        ("image", [1], "BYTES", struct.pack("<I", 1) + b"a" + b"extra", 5, "5 bytes of binary data follow the inputs unclaimed"),
        ("image", [1], "BYTES", struct.pack("<I", 1) + b"a", 50, "input 'image': binary_data_size 50 runs past the end of the binary data"),
        *[
            ("image", [1], "BYTES", b"", size, "input 'image': 'binary_data_size' must be a non-negative integer")
            for size in (-1, True, "5")
        ],
        ("pixels", [1, 3, 224, 224], "FP32", b"\0" * 8, 8, "input 'pixels': 8 bytes of binary data, expected 602112 for shape [1, 3, 224, 224]"),
    ],
)
def test_broken_binary_data(name: str, shape: list[int], datatype: str, payload: bytes, size: Any, message: str) -> None:
    header = {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}}]}
    body, length = binary_request(header, payload)
    assert refusal(body, length) == message


def test_non_finite_binary_pixels_are_refused() -> None:
    pixels = np.zeros((1, 3, 224, 224), dtype="<f4")
    pixels[0, 0, 0, 0] = np.nan
    header = {"inputs": [pixels_tensor(parameters={"binary_data_size": pixels.nbytes})]}
    body, length = binary_request(header, pixels.tobytes())
    assert refusal(body, length) == "input 'pixels': values must be finite (no NaN or infinity)"


def request_with(outputs: list[dict[str, Any]], request_id: str | None = None, rows: int = 1) -> InferRequest:
    document: dict[str, Any] = {"inputs": [image_tensor(shape=[rows], data=[b64(b"i")] * rows)], "outputs": outputs}
    if request_id is not None:
        document["id"] = request_id
    return parse(document, classes=3)


def split_binary_elements(raw: bytes) -> list[str]:
    strings = []
    while raw:
        (size,) = struct.unpack_from("<I", raw)
        strings.append(raw[4 : 4 + size].decode())
        raw = raw[4 + size :]
    return strings


def test_classification_output_follows_triton_format() -> None:
    request = request_with(
        [{"name": "probabilities", "parameters": {"classification": 2, "binary_data": True}}], request_id="x"
    )
    probabilities = np.array([[0.2, 0.5, 0.3]])
    encoded, length = encode_infer_response(request, probabilities, ["a", "b", "c"], "m", "1")
    assert length is not None
    strings = ["0.500000:1:b", "0.300000:2:c"]
    assert json.loads(encoded[:length]) == {
        "model_name": "m",
        "model_version": "1",
        "id": "x",
        "outputs": [
            {
                "name": "probabilities",
                "datatype": "BYTES",
                "shape": [1, 2],
                "parameters": {"binary_data_size": sum(4 + len(s) for s in strings)},
            }
        ],
    }
    assert split_binary_elements(encoded[length:]) == strings


def test_json_outputs_are_the_whole_answer_in_compact_json() -> None:
    request = request_with(
        [{"name": "probabilities"}, {"name": "probabilities", "parameters": {"classification": 1}}], rows=2
    )
    probabilities = np.array([[0.1, 0.6, 0.3], [0.7, 0.2, 0.1]])
    encoded, length = encode_infer_response(request, probabilities, ["a", "b", "c"], "densenet121", "2")
    assert length is None
    # The tensor travels as float32, as its datatype says: 0.1 is 0.10000000149011612 there.
    as_float32 = [float(value) for value in probabilities.astype(np.float32).reshape(-1)]
    assert as_float32[0] != 0.1
    assert json.loads(encoded) == {
        "model_name": "densenet121",
        "model_version": "2",
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [2, 3], "data": as_float32},
            {"name": "probabilities", "datatype": "BYTES", "shape": [2, 1], "data": ["0.600000:1:b", "0.700000:0:a"]},
        ],
    }
    assert b", " not in encoded and b": " not in encoded


def test_binary_outputs_follow_the_header_in_request_order() -> None:
    request = request_with(
        [
            {"name": "probabilities", "parameters": {"binary_data": True}},
            {"name": "probabilities", "parameters": {"binary_data": True, "classification": 1}},
        ]
    )
    probabilities = np.array([[0.25, 0.5, 0.25]])
    encoded, length = encode_infer_response(request, probabilities, ["a", "b", "c"], "m", "1")
    assert length is not None
    header = json.loads(encoded[:length])
    tensor = probabilities.astype("<f4").tobytes()
    element = "0.500000:1:b".encode()
    assert [output["parameters"]["binary_data_size"] for output in header["outputs"]] == [12, 4 + len(element)]
    assert header["outputs"][0]["shape"] == [1, 3] and header["outputs"][0]["datatype"] == "FP32"
    assert encoded[length:] == tensor + struct.pack("<I", len(element)) + element


def test_classification_ties_go_to_the_lower_index_on_every_row() -> None:
    """Many tied classes on a real-sized row: an unstable sort would name another class."""
    rng = np.random.default_rng(0)
    probabilities = rng.integers(0, 3, (2, 1000)).astype(np.float64) / 1000
    labels = [f"c{i}" for i in range(1000)]
    request = parse(
        {"inputs": [image_tensor(shape=[2], data=["eA=="] * 2)],
         "outputs": [{"name": "probabilities", "parameters": {"classification": 400}}]},
        classes=1000,
    )
    encoded, _ = encode_infer_response(request, probabilities, labels, "m", "1")
    strings = json.loads(encoded)["outputs"][0]["data"]
    for row in range(2):
        expected = sorted(range(1000), key=lambda i: (-probabilities[row, i], i))[:400]
        assert [int(s.split(":")[1]) for s in strings[row * 400 : (row + 1) * 400]] == expected
