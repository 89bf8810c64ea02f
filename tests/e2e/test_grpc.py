"""End to end: the Open Inference Protocol v2 over gRPC, through tritonclient.grpc, against the real server
(its fronts' gRPC servers on --grpc-port): health, metadata, inference equal to the HTTP v2 answer,
classification, the second model of a models file, errors, the hostile-image corpus, a client deadline,
overload and SIGTERM drain (the last three with the forward pass held at a gate, tests/support/gated_server.py).
"""

from __future__ import annotations

import base64
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.http as triton_http
from support.gated_server import Gate, gated_args, metric, start_gated_server
from support.hostile_corpus import Case, build_corpus
from support.paths import REPO_IMAGES
from support.server_process import ServerProcess
from support.several_models import SECOND_LABELS, SECOND_NAME
from support.waiting import wait_for, wait_until
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc
from tritonclient.utils import InferenceServerException

from densenet_server.decoding import decode_image
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import preprocess

MODEL = "densenet121"
IMAGES = [(REPO_IMAGES / name).read_bytes() for name in ("cat.jpg", "coffee.jpg", "cat.jpg")]
CAT = IMAGES[0]


def image_input(*images: bytes) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


def pixels_of(*images: bytes) -> np.ndarray:
    return np.stack([preprocess(decode_image(data, 40_000_000), DENSENET121.preprocessing) for data in images]).astype(np.float32)


def refusal(call: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as refused:
        call()  # type: ignore[operator]
    return refused.value


def grpc_client(server: ServerProcess) -> triton.InferenceServerClient:
    assert server.grpc_address is not None
    return triton.InferenceServerClient(server.grpc_address)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> triton.InferenceServerClient:
    return grpc_client(server)


@pytest.fixture(scope="module")
def http_v2(server: ServerProcess) -> np.ndarray:
    """The HTTP v2 route's probabilities [3, 1000] of IMAGES (tritonclient.http): the reference here."""
    http = triton_http.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=120.0)
    tensor = triton_http.InferInput("image", [len(IMAGES)], "BYTES")
    tensor.set_data_from_numpy(np.array(IMAGES, dtype=np.object_))
    return http.infer(MODEL, [tensor]).as_numpy("probabilities")


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
    assert not client.is_model_ready("resnet50")
    server = client.get_server_metadata()
    assert server.name == "densenet-server" and "classification" in server.extensions
    metadata = client.get_model_metadata(MODEL)
    assert (metadata.name, list(metadata.versions), metadata.platform) == (MODEL, ["1"], "onnxruntime_onnx")
    shapes = {tensor.name: (tensor.datatype, list(tensor.shape)) for tensor in [*metadata.inputs, *metadata.outputs]}
    assert shapes == {
        "image": ("BYTES", [-1]),
        "pixels": ("FP32", [-1, *DENSENET121.preprocessing.input_shape]),
        "probabilities": ("FP32", [-1, DENSENET121.num_classes]),
    }


def test_images_and_pixels_answer_as_the_http_v2_route(client: triton.InferenceServerClient, http_v2: np.ndarray) -> None:
    result = client.infer(MODEL, [image_input(*IMAGES)], request_id="grpc-1", client_timeout=120)
    assert result.get_response().id == "grpc-1"
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (3, 1000)
    np.testing.assert_allclose(probabilities, http_v2, atol=1e-5)

    pixels = triton.InferInput("pixels", [2, 3, 224, 224], "FP32")
    pixels.set_data_from_numpy(pixels_of(*IMAGES[:2]))
    np.testing.assert_allclose(client.infer(MODEL, [pixels]).as_numpy("probabilities"), http_v2[:2], atol=1e-5)


def test_classification(client: triton.InferenceServerClient, http_v2: np.ndarray) -> None:
    outputs = [triton.InferRequestedOutput("probabilities", class_count=3)]
    top = client.infer(MODEL, [image_input(*IMAGES[:2])], outputs=outputs).as_numpy("probabilities")
    assert top.shape == (2, 3)
    for row, expected in zip(top, http_v2):
        entries = [entry.decode().split(":", 2) for entry in row]
        assert [int(index) for _, index, _ in entries] == np.argsort(-expected)[:3].tolist()
        assert [float(probability) for probability, _, _ in entries] == pytest.approx(np.sort(expected)[::-1][:3], abs=1e-5)


def test_the_second_model_of_a_models_file_by_name(several_models_server: ServerProcess) -> None:
    client = grpc_client(several_models_server)
    metadata = client.get_model_metadata(SECOND_NAME)
    assert [list(tensor.shape) for tensor in metadata.outputs] == [[-1, len(SECOND_LABELS)]]
    assert client.is_model_ready(SECOND_NAME) and client.is_model_ready(MODEL)
    result = client.infer(SECOND_NAME, [image_input(CAT)])
    assert result.get_response().model_name == SECOND_NAME
    http = several_models_server.post(f"/v2/models/{SECOND_NAME}/infer", json={"inputs": [
        {"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(CAT).decode()]}]})
    expected = np.array(http.json()["outputs"][0]["data"]).reshape(1, len(SECOND_LABELS))
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    top = client.infer(SECOND_NAME, [image_input(CAT)], outputs=[triton.InferRequestedOutput("probabilities", class_count=2)])
    labels = [entry.decode().split(":", 2)[2] for entry in top.as_numpy("probabilities")[0]]
    assert labels == [SECOND_LABELS[index] for index in np.argsort(-expected[0])[:2]]  # the labels file's names


def test_errors(client: triton.InferenceServerClient, server: ServerProcess) -> None:
    mark = server.log_mark()
    unknown = refusal(lambda: client.infer("resnet50", [image_input(CAT)]))
    assert unknown.status() == "StatusCode.NOT_FOUND" and "unknown model 'resnet50'" in unknown.message()
    broken = refusal(lambda: client.infer(MODEL, [image_input(CAT, b"GIF89a broken")]))
    assert broken.status() == "StatusCode.INVALID_ARGUMENT" and "input 'image' element 1" in broken.message()
    wrong = triton.InferInput("pixels", [1, 3, 200, 200], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, 200, 200), np.float32))
    bad_tensor = refusal(lambda: client.infer(MODEL, [wrong]))
    assert bad_tensor.status() == "StatusCode.INVALID_ARGUMENT" and "shape must be [N, 3, 224, 224]" in bad_tensor.message()
    too_many = refusal(lambda: client.infer(MODEL, [image_input(*[CAT] * 17)]))
    assert too_many.status() == "StatusCode.INVALID_ARGUMENT" and "limit is 16 per request" in too_many.message()
    server.assert_healthy_since(mark)


CORPUS = build_corpus()


def test_the_hostile_corpus_gets_only_invalid_argument_class_answers(client: triton.InferenceServerClient, server: ServerProcess) -> None:
    mark = server.log_mark()
    wrong: list[tuple[str, str]] = []
    for case in CORPUS:
        try:
            client.infer(MODEL, [image_input(case.data)], client_timeout=120)
            code = "StatusCode.OK"
        except InferenceServerException as exc:
            code = str(exc.status())
        if code != expected_code(case):
            wrong.append((case.name, code))
    assert wrong == []
    server.assert_healthy_since(mark)


def expected_code(case: Case) -> str:
    return "StatusCode.OK" if case.status == 200 else "StatusCode.INVALID_ARGUMENT"


# --- the forward pass held at a gate: a client deadline, overload, SIGTERM --------------------------------


QUEUE_IMAGES = 2


@pytest.fixture(scope="module")
def gated_and_gate(checkpoint_path: Path, images_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Gate]]:
    """A gated server whose queue holds QUEUE_IMAGES images, and its gate (left open however the tests end)."""
    gate = Gate(tmp_path_factory.mktemp("gate"))
    args = gated_args(checkpoint_path, images_dir, "--max-queue-images", str(QUEUE_IMAGES), "--max-images-per-request", "2")
    try:
        with start_gated_server(args, gate) as server:
            yield server, gate
    finally:
        gate.open()


@pytest.fixture(scope="module")
def gated(gated_and_gate: tuple[ServerProcess, Gate]) -> ServerProcess:
    return gated_and_gate[0]


@pytest.fixture(scope="module")
def gate(gated_and_gate: tuple[ServerProcess, Gate]) -> Gate:
    return gated_and_gate[1]


def cat_request() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="image", datatype="BYTES", shape=[1]).contents.bytes_contents.append(CAT)
    return request


@pytest.fixture
def stub(gated: ServerProcess) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    assert gated.grpc_address is not None
    with grpc.insecure_channel(gated.grpc_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def test_a_client_deadline_shorter_than_inference_is_deadline_exceeded(
    gated: ServerProcess, gate: Gate, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    with gate.closed():
        with pytest.raises(grpc.RpcError) as late:
            stub.ModelInfer(cat_request(), timeout=1.5)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The server gave up at the client's deadline too (not its own 20 s): its answer is counted.
        wait_until(lambda: metric(gated, "densenet_grpc_requests_total", missing=0.0, method="ModelInfer",
                                  code="DEADLINE_EXCEEDED") == 1, "the server to count the call past its deadline")
    assert stub.ModelInfer(cat_request(), timeout=60).outputs[0].name == "probabilities"


def test_a_full_queue_is_unavailable_with_retry_after(
    gated: ServerProcess, gate: Gate, stub: service_pb2_grpc.GRPCInferenceServiceStub
) -> None:
    with gate.closed():
        in_model = stub.ModelInfer.future(cat_request(), timeout=60)
        gate.wait_entered()
        queued = [stub.ModelInfer.future(cat_request(), timeout=60) for _ in range(QUEUE_IMAGES)]
        wait_until(lambda: metric(gated, "densenet_queue_images", model=MODEL) == QUEUE_IMAGES, "a full queue")
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(cat_request(), timeout=60)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and "queue is full" in refused.value.details()
        assert int(dict(refused.value.trailing_metadata())["retry-after"]) >= 1
        assert grpc_client(gated).is_server_ready()  # shedding is not unreadiness
        gate.open()
        for accepted in [in_model, *queued]:
            assert accepted.result().outputs[0].name == "probabilities"


def test_sigterm_answers_the_accepted_calls_and_refuses_new_ones(checkpoint_path: Path, images_dir: Path, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    server = start_gated_server(gated_args(checkpoint_path, images_dir), gate)
    try:
        assert server.grpc_address is not None
        with grpc.insecure_channel(server.grpc_address) as channel, gate.closed():
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            in_flight = [stub.ModelInfer.future(cat_request(), timeout=60) for _ in range(3)]
            gate.wait_entered()
            wait_until(lambda: metric(server, "densenet_queue_images", model=MODEL) == 2, "every call accepted")

            server.process.send_signal(signal.SIGTERM)
            wait_for(lambda: new_call_code(server.grpc_address), lambda code: code == grpc.StatusCode.UNAVAILABLE,
                     "new gRPC calls to be refused after SIGTERM", timeout_s=10)
            assert not any(call.done() for call in in_flight)

            gate.open()
            for call in in_flight:
                assert call.result().outputs[0].name == "probabilities"
        assert server.process.wait(60) == 0
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def new_call_code(address: str) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        try:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ServerLive(pb.ServerLiveRequest(), timeout=2)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_a_grpc_port_that_cannot_be_bound_stops_the_server(checkpoint_path: Path, images_dir: Path) -> None:
    """Another process holds the port (without SO_REUSEPORT, so the fronts cannot share it): the front
    fails to boot and the server stops, rather than serving HTTP without the gRPC it was asked for."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess.start(
            ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--grpc-port", str(port)], wait_ready=False
        )
        try:
            assert server.process.wait(60) != 0
            assert f"127.0.0.1:{port}" in server.log()
        finally:
            server.stop()
