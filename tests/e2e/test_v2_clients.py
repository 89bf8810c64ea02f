"""Both dialects of the Open Inference Protocol's REST side, through both real clients: Triton's
(tritonclient.http) and KServe's (kserve.InferenceRESTClient, in a child process: tests/support/kserve_rest.py
says why). Health, metadata, and inference with JSON and binary tensor data, side by side, on one server.
tests/e2e/test_v2.py goes further into tritonclient alone."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from support.answers import probability_row
from support.kserve_rest import Connection, InferAnswer, KServeChild, StatusError, Tensor, health, infer, validate_metadata
from support.paths import REPO_IMAGES
from support.server_process import ServerProcess

from densenet_server.decoding import decode_image
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import preprocess

CAT = (REPO_IMAGES / "cat.jpg").read_bytes()
COFFEE = (REPO_IMAGES / "coffee.jpg").read_bytes()
MODEL = "densenet121"
FORMS = pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])


@pytest.fixture(scope="module")
def kserve() -> Iterator[KServeChild]:
    with KServeChild() as child:
        yield child


@pytest.fixture(scope="module")
def connection(server: ServerProcess) -> Connection:
    return Connection(server.base_url)


@pytest.fixture(scope="module")
def triton_client(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{server.port}", network_timeout=120.0)


@pytest.fixture(scope="module")
def expected(server: ServerProcess) -> dict[str, np.ndarray]:
    """Probabilities [1000] of cat.jpg and coffee.jpg from the seed's route, the reference here."""
    return {name: probability_row(server.get(f"/inference/{name}?top_k=1000").json()) for name in ("cat.jpg", "coffee.jpg")}


def images(binary: bool) -> np.ndarray:
    # JSON carries BYTES elements as strings: base64, as the server reads them; binary data the raw bytes.
    return np.array([CAT, COFFEE] if binary else [base64.b64encode(CAT), base64.b64encode(COFFEE)], dtype=np.object_)


def test_health_through_both_clients(
    server: ServerProcess, triton_client: triton.InferenceServerClient, kserve: KServeChild, connection: Connection
) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready(MODEL) and not triton_client.is_model_ready("resnet50")
    # KServe's client reads the JSON body: before the health answers had one it raised JSONDecodeError.
    assert kserve.call(health, connection, MODEL) == {"live": True, "ready": True, "model_ready": True}
    assert kserve.call(health, connection, "resnet50")["model_ready"] is False  # 404


def test_metadata_as_both_clients_read_it(
    server: ServerProcess, triton_client: triton.InferenceServerClient, kserve: KServeChild
) -> None:
    server_metadata, model_metadata = server.get("/v2").json(), server.get(f"/v2/models/{MODEL}").json()
    assert triton_client.get_server_metadata() == server_metadata
    assert triton_client.get_model_metadata(MODEL) == model_metadata
    # KServe's REST client (0.21) has no metadata call; its server's data models read ours.
    kserve_server, kserve_model = kserve.call(validate_metadata, server_metadata, model_metadata)
    assert kserve_server == {"name": "densenet-server", "version": server_metadata["version"], "extensions": server_metadata["extensions"]}
    assert kserve_model["name"] == MODEL and kserve_model["versions"] == ["1"] and kserve_model["platform"] == "onnxruntime_onnx"
    assert {"name": "image", "datatype": "BYTES", "shape": [-1]} in kserve_model["inputs"]
    assert kserve_model["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 1000]}]


@FORMS
def test_infer_images_through_both_clients(
    triton_client: triton.InferenceServerClient, kserve: KServeChild, connection: Connection,
    expected: dict[str, np.ndarray], binary: bool,
) -> None:
    image = triton.InferInput("image", [2], "BYTES")
    image.set_data_from_numpy(images(binary), binary_data=binary)
    by_triton = triton_client.infer(MODEL, [image], outputs=[triton.InferRequestedOutput("probabilities", binary_data=binary)])
    answer = kserve.call(infer, connection, MODEL, [Tensor("image", "BYTES", images(binary))], binary,
                         [("probabilities", {})], request_id="kserve-1")
    assert isinstance(answer, InferAnswer), answer
    assert (answer.id, answer.model_name) == ("kserve-1", MODEL)
    for probabilities in (by_triton.as_numpy("probabilities"), answer.outputs["probabilities"]):
        assert probabilities.dtype == np.float32 and probabilities.shape == (2, 1000)
        np.testing.assert_allclose(probabilities[0], expected["cat.jpg"], atol=1e-5)
        np.testing.assert_allclose(probabilities[1], expected["coffee.jpg"], atol=1e-5)


@FORMS
def test_infer_fp32_pixels_through_kserve(
    kserve: KServeChild, connection: Connection, expected: dict[str, np.ndarray], binary: bool
) -> None:
    pixels = np.stack([preprocess(decode_image(CAT, 40_000_000), DENSENET121.preprocessing)]).astype(np.float32)
    answer = kserve.call(infer, connection, MODEL, [Tensor("pixels", "FP32", pixels)], binary)  # no outputs: all
    assert isinstance(answer, InferAnswer), answer
    np.testing.assert_allclose(answer.outputs["probabilities"][0], expected["cat.jpg"], atol=1e-5)


@FORMS
def test_classification_extension_through_kserve(
    kserve: KServeChild, connection: Connection, expected: dict[str, np.ndarray], binary: bool
) -> None:
    answer = kserve.call(infer, connection, MODEL, [Tensor("image", "BYTES", images(binary))], binary,
                         [("probabilities", {"classification": 3})])
    assert isinstance(answer, InferAnswer), answer
    top = answer.outputs["probabilities"]
    assert top.shape == (2, 3)
    for row, name in zip(top, ("cat.jpg", "coffee.jpg")):
        order = np.argsort(-expected[name])[:3]
        for entry, index in zip(row, order):
            text = entry.decode() if isinstance(entry, bytes) else entry
            probability, got_index, label = text.split(":", 2)
            assert int(got_index) == index and label
            assert float(probability) == pytest.approx(expected[name][index], abs=1e-5)


def test_errors_reach_kserves_client_with_the_servers_message(kserve: KServeChild, connection: Connection) -> None:
    tensor = [Tensor("image", "BYTES", images(binary=True))]
    unknown = kserve.call(infer, connection, "resnet50", tensor, True)
    assert isinstance(unknown, StatusError) and unknown.status == 404
    assert "unknown model 'resnet50'" in unknown.message
    broken = kserve.call(infer, connection, MODEL, [Tensor("image", "BYTES", np.array([b"not an image"], dtype=np.object_))], True)
    assert isinstance(broken, StatusError) and broken.status == 400
    assert "input 'image' element 0" in broken.message
