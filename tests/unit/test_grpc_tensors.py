"""gRPC messages <-> the v2 request and answer (grpc_v2/tensors.py), and the domain's errors as gRPC status
codes (grpc_v2/status.py). No server, no model: messages built as tritonclient.grpc builds them."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tritonclient.grpc import InferInput, InferRequestedOutput
from tritonclient.grpc import service_pb2 as pb
from tritonclient.utils import deserialize_bytes_tensor

from densenet_server.batching import BatcherStopped, DeadlineExceeded, QueueFull
from densenet_server.decoding import ImageTooLarge, InvalidImage
from densenet_server.engine.base import EngineUnavailable
from densenet_server.grpc_v2.status import Failure, Unauthenticated, failure_of
from densenet_server.grpc_v2.tensors import infer_request, infer_response
from densenet_server.routes.v2_tensors import InferRequest, ProtocolError, RequestedOutput
from densenet_server.served_models import UnknownModel
from densenet_server.service import NotReady
from densenet_server.v2_inference import UnknownVersion

CLASSES = 5
PIXELS_SHAPE = (3, 4, 4)
LABELS = ["a", "b", "c", "d", "e"]


def message(*inputs: InferInput, outputs: tuple[InferRequestedOutput, ...] = (), request_id: str = "") -> pb.ModelInferRequest:
    """The ModelInferRequest tritonclient.grpc sends for these inputs and outputs (its own packing)."""
    request = pb.ModelInferRequest(model_name="m", id=request_id)
    for each in inputs:
        request.inputs.extend([each._get_tensor()])
        if each._get_content() is not None:
            request.raw_input_contents.extend([each._get_content()])
    for output in outputs:
        request.outputs.extend([output._get_tensor()])
    return request


def images(*data: bytes) -> InferInput:
    tensor = InferInput("image", [len(data)], "BYTES")
    tensor.set_data_from_numpy(np.array(data, dtype=np.object_))
    return tensor


def pixels(rows: np.ndarray) -> InferInput:
    tensor = InferInput("pixels", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    return tensor


def test_raw_bytes_images_and_fp32_pixels_as_tritonclient_sends_them() -> None:
    rows = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, *PIXELS_SHAPE)
    parsed = infer_request(message(images(b"one", b"", b"three"), pixels(rows), request_id="r-1"), CLASSES, PIXELS_SHAPE)
    assert parsed.id == "r-1"
    (image_name, image_rows), (pixel_name, pixel_rows) = parsed.inputs
    assert (image_name, image_rows) == ("image", [b"one", b"", b"three"])
    assert pixel_name == "pixels" and pixel_rows.dtype == np.float32
    np.testing.assert_array_equal(pixel_rows, rows)
    assert parsed.outputs == [RequestedOutput("probabilities", binary=True)]  # none asked: all of them
    assert infer_request(message(images(b"x")), CLASSES, PIXELS_SHAPE).id is None


def test_typed_contents_are_read_as_raw_contents_are() -> None:
    request = pb.ModelInferRequest(model_name="m")
    image = request.inputs.add(name="image", datatype="BYTES", shape=[2])
    image.contents.bytes_contents.extend([b"first", b"second"])
    values = np.linspace(-1, 1, 3 * 4 * 4, dtype=np.float32)
    pixel = request.inputs.add(name="pixels", datatype="FP32", shape=[1, *PIXELS_SHAPE])
    pixel.contents.fp32_contents.extend(values.tolist())
    (_, image_rows), (_, pixel_rows) = infer_request(request, CLASSES, PIXELS_SHAPE).inputs
    assert image_rows == [b"first", b"second"]
    np.testing.assert_array_equal(pixel_rows, values.reshape(1, *PIXELS_SHAPE))


def test_class_count_is_the_classification_extension() -> None:
    outputs = (InferRequestedOutput("probabilities", class_count=3),)
    parsed = infer_request(message(images(b"x"), outputs=outputs), CLASSES, PIXELS_SHAPE)
    assert parsed.outputs == [RequestedOutput("probabilities", binary=True, classification=3)]


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: message(images(b"x"), outputs=(InferRequestedOutput("probabilities", class_count=CLASSES + 1),)),
         "classification must be an integer from 1 to 5"),
        (lambda: message(images(b"x"), outputs=(InferRequestedOutput("logits"),)), "unexpected inference output 'logits'"),
        (lambda: message(pixels(np.zeros((1, 3, 5, 5), np.float32))), "input 'pixels': shape must be [N, 3, 4, 4], got [1, 3, 5, 5]"),
        (lambda: message(pixels(np.full((1, *PIXELS_SHAPE), np.nan, np.float32))), "values must be finite"),
        (lambda: message(images(b"x"), images(b"y")), "input 'image' is given twice"),
        (lambda: pb.ModelInferRequest(model_name="m"), "the request has no inputs"),
        (lambda: message(images()), "the inputs hold no images"),
    ],
    ids=["class-count", "output-name", "pixel-shape", "nan", "twice", "no-inputs", "no-rows"],
)
def test_malformed_requests_are_protocol_errors_naming_what_is_wrong(build, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as refused:
        infer_request(build(), CLASSES, PIXELS_SHAPE)
    assert text in str(refused.value)


def test_malformed_raw_contents_are_protocol_errors() -> None:
    request = message(images(b"x"))
    wrong_type = pb.ModelInferRequest.InferInputTensor(name="image", datatype="FP32", shape=[1])
    with pytest.raises(ProtocolError, match="input 'image': datatype must be BYTES"):
        infer_request(pb.ModelInferRequest(inputs=[wrong_type], raw_input_contents=[b"\0\0\0\0"]), CLASSES, PIXELS_SHAPE)
    truncated = pb.ModelInferRequest(inputs=request.inputs, raw_input_contents=[b"\x09\0\0\0abc"])
    with pytest.raises(ProtocolError, match="input 'image': BYTES element runs past its binary data"):
        infer_request(truncated, CLASSES, PIXELS_SHAPE)
    too_many = pb.ModelInferRequest(inputs=request.inputs, raw_input_contents=[request.raw_input_contents[0]] * 2)
    with pytest.raises(ProtocolError, match="raw_input_contents has 2 entries for 1 inputs"):
        infer_request(too_many, CLASSES, PIXELS_SHAPE)
    unknown = pb.ModelInferRequest.InferInputTensor(name="photo", datatype="BYTES", shape=[1])
    with pytest.raises(ProtocolError, match="unexpected inference input 'photo'"):
        infer_request(pb.ModelInferRequest(inputs=[unknown], raw_input_contents=[b"\1\0\0\0x"]), CLASSES, PIXELS_SHAPE)
    shared = message(images(b"x"))
    shared.inputs[0].parameters["shared_memory_region"].string_param = "region"
    with pytest.raises(ProtocolError, match="shared memory is not supported"):
        infer_request(shared, CLASSES, PIXELS_SHAPE)


def test_the_answer_carries_raw_fp32_probabilities_and_classification_strings() -> None:
    probabilities = np.array([[0.1, 0.5, 0.2, 0.15, 0.05], [0.3, 0.1, 0.1, 0.1, 0.4]], dtype=np.float64)
    request = InferRequest("id-9", [], [RequestedOutput("probabilities", True), RequestedOutput("probabilities", True, 2)])
    response = infer_response(request, probabilities, LABELS, "m", "1")
    assert (response.model_name, response.model_version, response.id) == ("m", "1", "id-9")
    tensor, top = response.outputs
    assert (tensor.datatype, list(tensor.shape)) == ("FP32", [2, 5])
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[0], "<f4").reshape(2, 5), probabilities.astype(np.float32)
    )
    assert (top.datatype, list(top.shape)) == ("BYTES", [2, 2])
    assert deserialize_bytes_tensor(response.raw_output_contents[1]).tolist() == [
        b"0.500000:1:b", b"0.200000:2:c", b"0.400000:4:e", b"0.300000:0:a"
    ]
    assert infer_response(InferRequest(None, [], request.outputs[:1]), probabilities, LABELS, "m", "1").id == ""


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ProtocolError("input 'image' element 0: bad"), Failure(grpc.StatusCode.INVALID_ARGUMENT, "input 'image' element 0: bad")),
        (InvalidImage("not an image"), Failure(grpc.StatusCode.INVALID_ARGUMENT, "not an image")),
        (ImageTooLarge("too many pixels"), Failure(grpc.StatusCode.INVALID_ARGUMENT, "too many pixels")),
        (UnknownModel("nope", ["densenet121"]),
         Failure(grpc.StatusCode.NOT_FOUND, "unknown model 'nope'; this server serves 'densenet121'")),
        (UnknownVersion("unknown version '2'"), Failure(grpc.StatusCode.NOT_FOUND, "unknown version '2'")),
        (QueueFull("the queue is full", retry_after_s=3), Failure(grpc.StatusCode.UNAVAILABLE, "the queue is full", "3")),
        (NotReady("loading"), Failure(grpc.StatusCode.UNAVAILABLE, "loading", "1")),
        (BatcherStopped("stopping"), Failure(grpc.StatusCode.UNAVAILABLE, "stopping", "1")),
        (EngineUnavailable("gone"), Failure(grpc.StatusCode.UNAVAILABLE, "gone", "1")),
        (DeadlineExceeded("late"), Failure(grpc.StatusCode.DEADLINE_EXCEEDED, "late")),
        (Unauthenticated("key"), Failure(grpc.StatusCode.UNAUTHENTICATED, "key")),
        (NotImplementedError(), Failure(grpc.StatusCode.UNIMPLEMENTED, "this method is not implemented by this server")),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_domain_errors_become_the_status_codes_of_their_http_meaning(error: Exception, expected: Failure) -> None:
    assert failure_of(error) == expected


def test_a_bug_has_no_client_status() -> None:
    assert failure_of(RuntimeError("bug")) is None
    assert failure_of(KeyError("bug")) is None
