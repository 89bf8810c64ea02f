"""End to end: the Open Inference Protocol v2 through real clients (tritonclient.http, plain JSON, the
binary extension by hand). Its request errors are tested in-process (tests/unit/test_routes_inprocess.py)."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
import tritonclient.http as triton
from support.answers import probability_row
from support.paths import REPO_IMAGES
from support.server_process import ServerProcess
from tritonclient.utils import InferenceServerException

from densenet_server.decoding import decode_image
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import preprocess

CAT = (REPO_IMAGES / "cat.jpg").read_bytes()
COFFEE = (REPO_IMAGES / "coffee.jpg").read_bytes()
MODEL = "densenet121"
INFER = f"/v2/models/{MODEL}/infer"


def pixels_of(*images: bytes) -> np.ndarray:
    return np.stack([preprocess(decode_image(data, 40_000_000), DENSENET121.preprocessing) for data in images]).astype(np.float32)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{server.port}", network_timeout=120.0)


@pytest.fixture(scope="module")
def expected(server: ServerProcess) -> dict[str, np.ndarray]:
    """Probabilities [1000] of cat.jpg and coffee.jpg from the seed's route, the reference here."""
    return {name: probability_row(server.get(f"/inference/{name}?top_k=1000").json()) for name in ("cat.jpg", "coffee.jpg")}


def test_health_and_metadata_through_tritonclient(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version="1")
    assert not client.is_model_ready("resnet50")
    server = client.get_server_metadata()
    assert server["name"] == "densenet-server" and server["version"]
    assert {"classification", "binary_tensor_data"} <= set(server["extensions"])
    metadata = client.get_model_metadata(MODEL)
    assert metadata == client.get_model_metadata(MODEL, model_version="1")
    assert metadata["name"] == MODEL and metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnxruntime_onnx"  # the default backend
    assert {"name": "image", "datatype": "BYTES", "shape": [-1]} in metadata["inputs"]
    assert {"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]} in metadata["inputs"]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 1000]}]
    with pytest.raises(InferenceServerException, match="unknown model 'resnet50'"):
        client.get_model_metadata("resnet50")
    # The repository extension's index, as Triton's client asks for it (an empty POST).
    assert "model_repository" in server["extensions"]
    assert client.get_model_repository_index() == [{"name": MODEL, "version": "1", "state": "READY"}]
    with pytest.raises(InferenceServerException, match="loads its models at start-up"):
        client.load_model(MODEL)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_bytes_input_through_tritonclient(
    client: triton.InferenceServerClient, expected: dict[str, np.ndarray], binary: bool
) -> None:
    image = triton.InferInput("image", [2], "BYTES")
    # The JSON form carries BYTES as base64 strings; the binary extension carries the raw bytes.
    images = [CAT, COFFEE] if binary else [base64.b64encode(CAT), base64.b64encode(COFFEE)]
    image.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=binary)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer(MODEL, [image], outputs=outputs, request_id="req-7")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities[0], expected["cat.jpg"], atol=1e-5)
    np.testing.assert_allclose(probabilities[1], expected["coffee.jpg"], atol=1e-5)
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_name"] == MODEL


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_fp32_pixels_through_tritonclient(
    client: triton.InferenceServerClient, expected: dict[str, np.ndarray], binary: bool
) -> None:
    pixels = triton.InferInput("pixels", [1, 3, 224, 224], "FP32")
    pixels.set_data_from_numpy(pixels_of(CAT), binary_data=binary)
    result = client.infer(MODEL, [pixels], model_version="1")  # no outputs: all of them, binary
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (1, 1000)
    np.testing.assert_allclose(probabilities[0], expected["cat.jpg"], atol=1e-5)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_classification_extension_through_tritonclient(
    client: triton.InferenceServerClient, expected: dict[str, np.ndarray], binary: bool
) -> None:
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([CAT if binary else base64.b64encode(CAT)], dtype=np.object_), binary_data=binary)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)]
    top = client.infer(MODEL, [image], outputs=outputs).as_numpy("probabilities")
    assert top.shape == (1, 3)
    order = np.argsort(-expected["cat.jpg"])[:3]
    for entry, index in zip(top[0], order):
        text = entry.decode() if isinstance(entry, bytes) else entry  # binary: bytes; JSON: str
        probability, got_index, label = text.split(":", 2)
        assert int(got_index) == index
        assert float(probability) == pytest.approx(expected["cat.jpg"][index], abs=1e-5)
        assert label


def test_both_inputs_and_both_output_forms_in_one_request(
    client: triton.InferenceServerClient, expected: dict[str, np.ndarray]
) -> None:
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([COFFEE], dtype=np.object_))
    pixels = triton.InferInput("pixels", [1, 3, 224, 224], "FP32")
    pixels.set_data_from_numpy(pixels_of(CAT))
    outputs = [
        triton.InferRequestedOutput("probabilities"),
        triton.InferRequestedOutput("probabilities", binary_data=False, class_count=1),
    ]
    result = client.infer(MODEL, [image, pixels], outputs=outputs)
    response = result.get_response()
    assert [o["datatype"] for o in response["outputs"]] == ["FP32", "BYTES"]
    probabilities = result.as_numpy("probabilities")  # the first output of that name
    np.testing.assert_allclose(probabilities[0], expected["coffee.jpg"], atol=1e-5)  # rows follow inputs
    np.testing.assert_allclose(probabilities[1], expected["cat.jpg"], atol=1e-5)
    top1 = response["outputs"][1]["data"]
    assert [int(s.split(":")[1]) for s in top1] == [int(np.argmax(expected["coffee.jpg"])), int(np.argmax(expected["cat.jpg"]))]


def test_plain_json_request_as_kserve_documents_it(server: ServerProcess, expected: dict[str, np.ndarray]) -> None:
    nested = pixels_of(CAT).tolist()  # natural multi-dimensional form
    body = {
        "id": "42",
        "inputs": [{"name": "pixels", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": nested}],
        "outputs": [{"name": "probabilities"}],
    }
    response = server.post(INFER, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["id"] == "42" and answer["model_name"] == MODEL and answer["model_version"] == "1"
    (output,) = answer["outputs"]
    assert output["name"] == "probabilities" and output["datatype"] == "FP32" and output["shape"] == [1, 1000]
    np.testing.assert_allclose(np.array(output["data"]), expected["cat.jpg"], atol=1e-5)

    body = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(CAT).decode()]}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]}
    answer = server.post(INFER, json=body).json()
    assert "id" not in answer
    (output,) = answer["outputs"]
    assert output["datatype"] == "BYTES" and output["shape"] == [1, 2]
    index = int(np.argmax(expected["cat.jpg"]))
    probability, got, label = output["data"][0].split(":", 2)
    assert int(got) == index and float(probability) == pytest.approx(expected["cat.jpg"][index], abs=1e-5)
    assert label == server.get("/inference/cat.jpg").json()["class"]


def test_binary_request_by_hand(server: ServerProcess, expected: dict[str, np.ndarray]) -> None:
    """The binary extension on the wire: JSON header, then length-prefixed BYTES elements."""
    element = struct.pack("<I", len(CAT)) + CAT
    header = (
        '{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":%d}}],'
        '"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}' % len(element)
    ).encode()
    response = server.post(INFER, data=header + element, headers={"Inference-Header-Content-Length": str(len(header))})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/octet-stream"
    json_size = int(response.headers["Inference-Header-Content-Length"])
    answer = json.loads(response.content[:json_size])
    assert answer["outputs"][0]["parameters"]["binary_data_size"] == 4000
    values = np.frombuffer(response.content[json_size:], dtype="<f4")
    np.testing.assert_allclose(values, expected["cat.jpg"], atol=1e-5)
