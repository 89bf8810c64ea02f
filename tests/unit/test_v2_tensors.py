"""The v2 request parser and response encoder, without HTTP: the corners real clients reach."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from densenet_server.routes.v2_tensors import ProtocolError, encode_infer_response, parse_infer_request


def binary_request(header: dict, payload: bytes) -> tuple[bytes, str]:
    encoded = json.dumps(header).encode()
    return encoded + payload, str(len(encoded))


def test_bytes_input_nested_json_of_shape_n_by_1() -> None:
    data = [[base64.b64encode(b"one").decode()], [base64.b64encode(b"two").decode()]]
    body = json.dumps({"inputs": [{"name": "image", "shape": [2, 1], "datatype": "BYTES", "data": data}]}).encode()
    request = parse_infer_request(body, None, 1000)
    assert request.inputs == [("image", [b"one", b"two"])]
    assert request.rows == 2 and request.outputs[0].binary is False


def test_binary_bytes_and_fp32_inputs_in_order() -> None:
    elements = b"".join(struct.pack("<I", len(x)) + x for x in (b"abc", b""))
    pixels = np.arange(3 * 224 * 224, dtype="<f4")
    header = {
        "inputs": [
            {"name": "image", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(elements)}},
            {"name": "pixels", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": {"binary_data_size": pixels.nbytes}},
        ],
        "parameters": {"binary_data_output": True},
    }
    body, length = binary_request(header, elements + pixels.tobytes())
    request = parse_infer_request(body, length, 1000)
    assert request.inputs[0] == ("image", [b"abc", b""])
    np.testing.assert_array_equal(request.inputs[1][1], pixels.reshape(1, 3, 224, 224))
    assert request.outputs[0].binary is True


@pytest.mark.parametrize(
    ("payload", "size", "fragment"),
    [
        (struct.pack("<I", 10) + b"abc", 7, "runs past its binary data"),
        (b"\x01\x00", 2, "truncated BYTES element length"),
        (struct.pack("<I", 1) + b"a" + b"extra", 5, "unclaimed"),
        (struct.pack("<I", 1) + b"a", 50, "runs past the end"),
    ],
)
def test_broken_binary_data(payload: bytes, size: int, fragment: str) -> None:
    header = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": size}}]}
    body, length = binary_request(header, payload)
    with pytest.raises(ProtocolError, match=fragment):
        parse_infer_request(body, length, 1000)


def test_non_finite_pixels_are_refused() -> None:
    pixels = np.zeros((1, 3, 224, 224), dtype="<f4")
    pixels[0, 0, 0, 0] = np.nan
    header = {"inputs": [{"name": "pixels", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": {"binary_data_size": pixels.nbytes}}]}
    body, length = binary_request(header, pixels.tobytes())
    with pytest.raises(ProtocolError, match="finite"):
        parse_infer_request(body, length, 1000)


def test_classification_output_follows_triton_format() -> None:
    body = json.dumps({
        "id": "x",
        "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(b"i").decode()]}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2, "binary_data": True}}],
    }).encode()
    request = parse_infer_request(body, None, 3)
    probabilities = np.array([[0.2, 0.5, 0.3]])
    encoded, length = encode_infer_response(request, probabilities, ["a", "b", "c"], "m", "1")
    assert length is not None
    document = json.loads(encoded[:length])
    assert document["id"] == "x" and document["outputs"][0]["shape"] == [1, 2]
    raw = encoded[length:]
    strings = []
    while raw:
        (size,) = struct.unpack_from("<I", raw)
        strings.append(raw[4 : 4 + size].decode())
        raw = raw[4 + size :]
    assert strings == ["0.500000:1:b", "0.300000:2:c"]
    assert document["outputs"][0]["parameters"]["binary_data_size"] == sum(4 + len(s) for s in strings)
