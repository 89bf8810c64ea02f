"""The gRPC service in-process (grpc_v2/server.py on a free port, the session's loaded model) through
tritonclient.grpc and the generated stub: health, metadata, inference, errors, and what every call gets
(request id, deadline, API keys, metrics, access-log line). TLS: test_grpc_tls.py; the real server:
tests/e2e/test_grpc.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from support.paths import REPO_IMAGES
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc
from tritonclient.utils import InferenceServerException

from densenet_server import access_log, request_scope
from densenet_server.api_keys import ApiKeys
from densenet_server.batching import QueueFull
from densenet_server.config import Settings
from densenet_server.grpc_v2.server import GrpcServer, start_grpc_server
from densenet_server.preprocess import normalize
from densenet_server.served_models import ServedModels
from densenet_server.service import InferenceService

CAT = (REPO_IMAGES / "cat.jpg").read_bytes()
COFFEE = (REPO_IMAGES / "coffee.jpg").read_bytes()
MODEL = "densenet121"
KEY = "a-key-of-at-least-16-characters"


@pytest.fixture(scope="module")
def grpc_server(inference_service: InferenceService) -> Iterator[GrpcServer]:
    server = start_grpc_server(ServedModels([inference_service]), "127.0.0.1", 0)
    yield server
    server.stop(5)


@pytest.fixture(scope="module")
def client(grpc_server: GrpcServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{grpc_server.port}")


@pytest.fixture(scope="module")
def stub(grpc_server: GrpcServer) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def image_input(*images: bytes) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


def refusal(call: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as refused:
        call()  # type: ignore[operator]
    return refused.value


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, model_version="1")
    assert not client.is_model_ready("resnet50") and not client.is_model_ready(MODEL, model_version="2")
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "densenet-server" and server["version"]
    assert {"classification", "model_repository"} <= set(server["extensions"])
    metadata = client.get_model_metadata(MODEL, as_json=True)
    assert metadata == client.get_model_metadata(MODEL, model_version="1", as_json=True)
    assert (metadata["name"], metadata["versions"], metadata["platform"]) == (MODEL, ["1"], "onnxruntime_onnx")
    # int64 shapes are strings in protobuf's JSON form
    assert metadata["inputs"] == [
        {"name": "image", "datatype": "BYTES", "shape": ["-1"]},
        {"name": "pixels", "datatype": "FP32", "shape": ["-1", "3", "224", "224"]},
    ]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": ["-1", "1000"]}]
    assert client.get_model_repository_index(as_json=True)["models"] == [{"name": MODEL, "version": "1", "state": "READY"}]
    unknown = refusal(lambda: client.get_model_metadata("resnet50"))
    assert unknown.status() == "StatusCode.NOT_FOUND" and "unknown model 'resnet50'" in unknown.message()
    assert refusal(lambda: client.get_model_metadata(MODEL, model_version="2")).status() == "StatusCode.NOT_FOUND"
    assert refusal(lambda: client.get_model_config(MODEL)).status() == "StatusCode.UNIMPLEMENTED"


def test_infer_images_pixels_and_classification(client: triton.InferenceServerClient, inference_service: InferenceService) -> None:
    expected = np.stack(inference_service.image_probabilities([CAT, COFFEE]))
    result = client.infer(MODEL, [image_input(CAT, COFFEE)], request_id="req-7")
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    assert result.get_response().id == "req-7" and result.get_response().model_name == MODEL

    pixels = triton.InferInput("pixels", [1, 3, 224, 224], "FP32")
    pixels.set_data_from_numpy(normalize(inference_service.prepare(CAT)[None], inference_service.info.record.preprocessing))
    both = client.infer(MODEL, [pixels, image_input(COFFEE)]).as_numpy("probabilities")
    np.testing.assert_allclose(both, expected, atol=1e-5)

    top = client.infer(MODEL, [image_input(CAT)], outputs=[triton.InferRequestedOutput("probabilities", class_count=3)])
    entries = [entry.decode().split(":", 2) for entry in top.as_numpy("probabilities")[0]]
    order = np.argsort(-expected[0])[:3]
    assert [int(index) for _, index, _ in entries] == order.tolist()
    assert [float(probability) for probability, _, _ in entries] == pytest.approx(expected[0][order], abs=1e-5)
    assert entries[0][2] == inference_service.info.categories[order[0]]


def test_typed_contents_answer_as_raw_contents(stub: service_pb2_grpc.GRPCInferenceServiceStub, inference_service: InferenceService) -> None:
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="image", datatype="BYTES", shape=[1]).contents.bytes_contents.append(CAT)
    response = stub.ModelInfer(request, timeout=60)
    assert list(response.outputs[0].shape) == [1, 1000]
    got = np.frombuffer(response.raw_output_contents[0], "<f4")
    np.testing.assert_allclose(got, inference_service.image_probabilities([CAT])[0], atol=1e-5)


def test_bad_input_is_invalid_argument_naming_the_input_and_element(client: triton.InferenceServerClient) -> None:
    broken = refusal(lambda: client.infer(MODEL, [image_input(CAT, b"not an image")]))
    assert broken.status() == "StatusCode.INVALID_ARGUMENT"
    assert "input 'image' element 1:" in broken.message()
    too_many = refusal(lambda: client.infer(MODEL, [image_input(*[b"x"] * 17)]))
    assert too_many.status() == "StatusCode.INVALID_ARGUMENT" and "limit is 16 per request" in too_many.message()
    shape = triton.InferInput("pixels", [1, 3, 8, 8], "FP32")
    shape.set_data_from_numpy(np.zeros((1, 3, 8, 8), np.float32))
    wrong = refusal(lambda: client.infer(MODEL, [shape]))
    assert wrong.status() == "StatusCode.INVALID_ARGUMENT" and "shape must be [N, 3, 224, 224]" in wrong.message()
    assert refusal(lambda: client.infer("resnet50", [image_input(CAT)])).status() == "StatusCode.NOT_FOUND"


def call_with_trailers(call: object, request: object, **kwargs: object) -> tuple[grpc.StatusCode, dict[str, str]]:
    try:
        _, outcome = call.with_call(request, timeout=60, **kwargs)  # type: ignore[attr-defined]
    except grpc.RpcError as exc:
        return exc.code(), dict(exc.trailing_metadata())
    return grpc.StatusCode.OK, dict(outcome.trailing_metadata())


def cat_request() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="image", datatype="BYTES", shape=[1]).contents.bytes_contents.append(CAT)
    return request


def test_a_full_queue_is_unavailable_with_a_retry_hint(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, inference_service: InferenceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(images: object) -> None:
        raise QueueFull("the inference queue is full", retry_after_s=4)

    monkeypatch.setattr(inference_service, "image_probabilities", full)
    code, trailers = call_with_trailers(stub.ModelInfer, cat_request())
    assert code == grpc.StatusCode.UNAVAILABLE and trailers["retry-after"] == "4"


def test_the_deadline_is_the_clients_or_the_servers_whichever_is_sooner(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, inference_service: InferenceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []

    def record_deadline(images: list[bytes]) -> list[np.ndarray]:
        seen.append(request_scope.remaining_s(-1.0))
        return [np.zeros(1000)]

    monkeypatch.setattr(inference_service, "image_probabilities", record_deadline)
    stub.ModelInfer(cat_request(), timeout=3)
    stub.ModelInfer(cat_request())  # no client deadline: the server's, --request-timeout-s
    assert 0 < seen[0] < 3.5  # gRPC sends the timeout rounded up a little
    assert 3 < seen[1] <= inference_service.settings.request_timeout_s


def test_request_id_metrics_and_an_access_line_for_every_call(
    stub: service_pb2_grpc.GRPCInferenceServiceStub, inference_service: InferenceService, tmp_path: Path
) -> None:
    log_file = tmp_path / "access.log"
    access_log.configure(str(log_file))
    try:
        before = inference_service.metrics.grpc_requests.labels("ModelInfer", "OK")._value.get()
        code, trailers = call_with_trailers(stub.ModelInfer, cat_request(), metadata=[("x-request-id", "abc-123")])
        assert code == grpc.StatusCode.OK and trailers["x-request-id"] == "abc-123"
        code, trailers = call_with_trailers(stub.ModelMetadata, pb.ModelMetadataRequest(name="nope"), metadata=[("x-request-id", "bad id!")])
        assert code == grpc.StatusCode.NOT_FOUND and len(trailers["x-request-id"]) == 32  # made up: the given one is not plausible
        logging.getLogger(access_log.LOGGER_NAME).handlers[0].flush()
        first, second = [json.loads(line) for line in log_file.read_text().splitlines()]
    finally:
        access_log.configure(access_log.OFF)
    assert inference_service.metrics.grpc_requests.labels("ModelInfer", "OK")._value.get() == before + 1
    assert inference_service.metrics.grpc_requests.labels("ModelMetadata", "NOT_FOUND")._value.get() >= 1
    assert first["request_id"] == "abc-123" and first["method"] == "GRPC"
    assert first["route"] == first["path"] == "/inference.GRPCInferenceService/ModelInfer"
    assert first["status"] == 0 and first["images"] == 1 and first["batch_size"] >= 1
    assert first["image_bytes"] == len(CAT) and first["body_bytes"] > len(CAT) and first["remote_addr"] == "127.0.0.1"
    assert second["status"] == grpc.StatusCode.NOT_FOUND.value[0] and second["request_id"] == trailers["x-request-id"]


def test_with_api_keys_every_method_but_the_probes_needs_a_valid_key(
    inference_service: InferenceService, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# one key\n{KEY}\n")
    server = start_grpc_server(ServedModels([inference_service]), "127.0.0.1", 0, api_keys=ApiKeys(keys_file))
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
        assert client.is_server_live() and client.is_server_ready()  # probes stay open
        for headers in (None, {"authorization": "Bearer wrong-key-of-16-characters"}, {"authorization": KEY}):
            for call in (lambda: client.get_model_metadata(MODEL, headers=headers),
                         lambda: client.infer(MODEL, [image_input(CAT)], headers=headers),
                         lambda: client.is_model_ready(MODEL, headers=headers)):
                refused = refusal(call)
                assert refused.status() == "StatusCode.UNAUTHENTICATED" and KEY not in refused.message()
        allowed = {"authorization": f"Bearer {KEY}"}
        assert client.get_model_metadata(MODEL, headers=allowed).name == MODEL
        assert client.infer(MODEL, [image_input(CAT)], headers=allowed).as_numpy("probabilities").shape == (1, 1000)
    finally:
        server.stop(5)


def test_the_message_size_limit_is_max_body_bytes() -> None:
    """Enforced by gRPC itself before any of ours runs, so a model that never loads will do."""
    server = start_grpc_server(ServedModels.in_process(Settings(max_body_bytes=10_000)), "127.0.0.1", 0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            code, _ = call_with_trailers(stub.ModelInfer, cat_request())
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Under the limit, the model's state answers: loading is UNAVAILABLE, with a retry hint.
            small = pb.ModelInferRequest(model_name=MODEL)
            small.inputs.add(name="image", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"x")
            code, trailers = call_with_trailers(stub.ModelInfer, small)
            assert code == grpc.StatusCode.UNAVAILABLE and trailers["retry-after"] == "1"
    finally:
        server.stop(5)
