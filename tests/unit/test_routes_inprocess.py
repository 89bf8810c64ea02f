"""The HTTP routes in-process: create_app on a real, loaded service, through Flask's test client.

Request parsing, validation and error answers need no process boundary, so they are tested here: no
gunicorn, no socket, and a failure points at the route. What does need the process (gunicorn, limits on
the wire, raw paths, shutdown, logs) is tested end to end in tests/e2e.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image
from support.answers import assert_error, assert_same_answer
from support.paths import REPO_IMAGES
from support.several_models import SECOND_LABELS, SECOND_NAME, SecondModel, write_models_file
from werkzeug.test import TestResponse

from densenet_server.app import create_app
from densenet_server.config import Settings
from densenet_server.models_file import model_settings
from densenet_server.served_models import ServedModels
from densenet_server.service import InferenceService

CAT = (REPO_IMAGES / "cat.jpg").read_bytes()
COFFEE = (REPO_IMAGES / "coffee.jpg").read_bytes()
MODEL = "densenet121"
INFER = f"/v2/models/{MODEL}/infer"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_of(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buffer, "PNG")
    return buffer.getvalue()


def answer_of(client: FlaskClient, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.get_json()


# --- GET /inference/<filename>: the seed's route ---------------------------------------------------


def test_inference_answer_shape(app_client: FlaskClient, checkpoint_path: Path) -> None:
    body = answer_of(app_client, "/inference/cat.jpg")
    assert len(body["top_k"]) == 5
    assert body["class"] == body["top_k"][0]["label"]
    assert body["index"] == body["top_k"][0]["index"]
    assert body["probability"] == body["top_k"][0]["probability"]
    probabilities = [entry["probability"] for entry in body["top_k"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert body["model"] == MODEL
    # Random test weights must never pass for the published ones.
    assert body["weights_published"] is False
    assert checkpoint_path.name in body["weights"]
    assert "not torchvision's published" in body["warning"]


@pytest.mark.parametrize("k", [1, 3, 1000])
def test_top_k(app_client: FlaskClient, k: int) -> None:
    body = answer_of(app_client, f"/inference/cat.jpg?top_k={k}")
    assert len(body["top_k"]) == k
    assert len({entry["index"] for entry in body["top_k"]}) == k
    # The first k of the full ranking, not some other k classes.
    ranking = answer_of(app_client, "/inference/cat.jpg?top_k=1000")["top_k"]
    assert [e["index"] for e in body["top_k"]] == [e["index"] for e in ranking[:k]]
    if k == 1000:
        assert sum(entry["probability"] for entry in body["top_k"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("k", ["0", "1001", "-1", "five", "2.5", ""])
def test_top_k_out_of_range(app_client: FlaskClient, k: str) -> None:
    message = assert_error(app_client.get(f"/inference/cat.jpg?top_k={k}"), 400, "invalid_argument")
    assert message == f"top_k must be an integer from 1 to 1000, got {k!r}"


def test_link_inside_the_folder_answers_what_its_target_answers(app_client: FlaskClient) -> None:
    # The same bytes through the same model: the whole answer is identical, not just a 200.
    assert answer_of(app_client, "/inference/link-in.jpg") == answer_of(app_client, "/inference/cat.jpg")


def test_missing_image_says_where_to_put_it(app_client: FlaskClient, images_dir: Path) -> None:
    message = assert_error(app_client.get("/inference/dog.jpg"), 404, "image_not_found")
    assert "No image named 'dog.jpg' in the images folder" in message
    assert f"images folder ({images_dir})" in message


@pytest.mark.parametrize("name", ["not-an-image.jpg", "empty.png", "truncated.jpg"])
def test_broken_files_of_the_folder_are_invalid_images(app_client: FlaskClient, name: str) -> None:
    assert_error(app_client.get(f"/inference/{name}"), 400, "invalid_image")


def test_unknown_route_and_method_are_json(app_client: FlaskClient) -> None:
    assert_error(app_client.get("/no-such-route"), 404, "not_found")
    assert_error(app_client.delete("/inference/cat.jpg"), 405, "method_not_allowed")


def test_liveness_links_the_web_page(app_client: FlaskClient) -> None:
    body = answer_of(app_client, "/")
    assert (body["status"], body["ready"], body["ui"]) == ("ok", True, "/ui")
    page = app_client.get(body["ui"])
    assert page.status_code == 200 and page.mimetype == "text/html"


# --- POST /inference: uploads ------------------------------------------------------------------------


def test_raw_image_body_answers_like_get(app_client: FlaskClient) -> None:
    expected = answer_of(app_client, "/inference/cat.jpg")
    for content_type in ("image/jpeg", "image/png", "application/octet-stream"):  # the type is a hint only
        response = app_client.post("/inference", data=CAT, content_type=content_type)
        assert response.status_code == 200, response.text
        assert_same_answer(response.get_json(), expected)


def test_one_multipart_file_answers_like_get(app_client: FlaskClient) -> None:
    expected = answer_of(app_client, "/inference/coffee.jpg?top_k=3")
    response = app_client.post("/inference?top_k=3", data={"file": (io.BytesIO(COFFEE), "coffee.jpg", "image/jpeg")})
    assert response.status_code == 200, response.text
    assert_same_answer(response.get_json(), expected)
    assert len(response.get_json()["top_k"]) == 3


def test_several_files_with_broken_ones_answer_each_in_order(app_client: FlaskClient) -> None:
    cat_png = png_of(CAT)
    files = [
        ("cat.jpg", CAT),
        ("broken.jpg", b"this is not a JPEG"),
        ("coffee.jpg", COFFEE),
        ("truncated.jpg", CAT[:2000]),
        ("cat.png", cat_png),
    ]
    data = {"file": [(io.BytesIO(content), name, "application/octet-stream") for name, content in files]}
    response = app_client.post("/inference?top_k=2", data=data)
    assert response.status_code == 200, response.text
    results = response.get_json()["results"]
    assert [r["filename"] for r in results] == [name for name, _ in files]
    cat = answer_of(app_client, "/inference/cat.jpg?top_k=2")
    coffee = answer_of(app_client, "/inference/coffee.jpg?top_k=2")
    assert_same_answer(results[0], {"filename": "cat.jpg", **cat})
    assert_same_answer(results[2], {"filename": "coffee.jpg", **coffee})
    for broken in (results[1], results[3]):
        assert set(broken) == {"filename", "status", "error"}
        assert broken["status"] == 400 and broken["error"]["code"] == "invalid_image" and broken["error"]["message"]
    alone = app_client.post("/inference?top_k=2", data=cat_png, content_type="image/png")
    assert_same_answer(results[4], {"filename": "cat.png", **alone.get_json()})


def test_multi_file_request_counts_each_image_in_metrics(
    app_client: FlaskClient, inference_service: InferenceService
) -> None:
    def classified() -> float:
        value = inference_service.metrics.registry.get_sample_value("densenet_images_classified_total", {"model": MODEL})
        assert value is not None
        return value

    before = classified()
    data = {"file": [(io.BytesIO(CAT), f"cat{i}.jpg", "image/jpeg") for i in range(3)]}
    assert app_client.post("/inference", data=data).status_code == 200
    assert classified() - before == 3


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "fragment"),
    [
        ({"data": CAT, "content_type": "text/plain"}, 415, "unsupported_media_type", "Content-Type text/plain is not accepted"),
        ({"json": {"file": "cat.jpg"}}, 415, "unsupported_media_type", "Content-Type application/json is not accepted"),
        ({"data": CAT}, 415, "unsupported_media_type", "Content-Type (none) is not accepted"),
        ({"data": b"", "content_type": "image/jpeg"}, 400, "missing_file", "the request body is empty"),
        ({"data": {"other": (io.BytesIO(CAT), "cat.jpg", "image/jpeg")}}, 400, "missing_file", "no 'file' part"),
        ({"data": {"file": (io.BytesIO(b""), "", "application/octet-stream")}}, 400, "missing_file", "no 'file' part"),
        ({"data": b"not an image", "content_type": "image/jpeg"}, 400, "invalid_image", "not an image"),
        ({"data": {"file": (io.BytesIO(b""), "x.jpg", "image/jpeg")}}, 400, "invalid_image", "the image is empty (0 bytes)"),
        ({"data": {"file": (io.BytesIO(CAT), "cat.jpg", "image/jpeg")}, "query_string": {"top_k": "0"}},
         400, "invalid_argument", "top_k must be an integer from 1 to 1000, got '0'"),
    ],
    ids=["text", "json", "no-type", "empty-body", "other-part", "empty-part", "junk", "empty-file", "top-k"],
)
def test_upload_errors(app_client: FlaskClient, kwargs: dict, status: int, code: str, fragment: str) -> None:
    assert fragment in assert_error(app_client.post("/inference", **kwargs), status, code)


def test_unsupported_image_format_is_415(app_client: FlaskClient) -> None:
    ico = io.BytesIO()
    Image.new("RGB", (16, 16)).save(ico, "ICO")
    message = assert_error(app_client.post("/inference", data=ico.getvalue(), content_type="image/x-icon"),
                           415, "unsupported_image_format")
    assert message.startswith("ICO images are not accepted")


def test_get_is_not_allowed_on_the_upload_route(app_client: FlaskClient) -> None:
    assert_error(app_client.get("/inference"), 405, "method_not_allowed")


# --- the Open Inference Protocol v2: request errors ----------------------------------------------------


def assert_v2_error(response: TestResponse, status: int, message: str) -> None:
    """The protocol's error form, {"error": "<message>"}, containing ``message``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    assert message in body["error"], body["error"]


def test_v2_health_answers_in_both_dialects(app_client: FlaskClient) -> None:
    # The status for Triton's clients, KServe's JSON body for KServe's.
    expected = {
        "/v2/health/live": {"live": True},
        "/v2/health/ready": {"ready": True},
        f"/v2/models/{MODEL}/ready": {"name": MODEL, "ready": True},
        f"/v2/models/{MODEL}/versions/1/ready": {"name": MODEL, "ready": True},
    }
    for path, body in expected.items():
        response = app_client.get(path)
        assert response.status_code == 200 and response.get_json() == body, path
        assert response.headers["Content-Type"] == "application/json"


def image_input(data: list[str], shape: list[int] | None = None) -> dict:
    return {"name": "image", "shape": shape or [len(data)], "datatype": "BYTES", "data": data}


def pixels_input(shape: list[int], data: list) -> dict:
    return {"name": "pixels", "shape": shape, "datatype": "FP32", "data": data}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({}, "'inputs' must be a non-empty list"),
        ([1, 2], "must be a JSON object"),
        ({"inputs": [{"name": "input0", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}, "unexpected inference input 'input0'"),
        ({"inputs": [{"name": "image", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, "datatype must be BYTES"),
        ({"inputs": [image_input([b64(CAT)], shape=[2])]}, "shape says 2 elements, data has 1"),
        ({"inputs": [image_input(["not base64!"])]}, "not valid base64"),
        ({"inputs": [image_input([b64(b"junk")])]}, "input 'image' element 0"),
        ({"inputs": [pixels_input([1, 3, 4, 4], [0.0] * 48)]}, "shape must be [N, 3, 224, 224]"),
        ({"inputs": [pixels_input([1, 3, 224, 224], [0.0] * 10)]}, "needs 150528 values"),
        ({"inputs": [pixels_input([1, 3, 224, 224], ["a"] * 150528)]}, "numbers only"),
        ({"inputs": [image_input([b64(CAT)])], "outputs": [{"name": "logits"}]}, "unexpected inference output 'logits'"),
        ({"inputs": [image_input([b64(CAT)])], "outputs": [{"name": "probabilities", "parameters": {"classification": 1001}}]},
         "classification must be"),
        ({"id": 5, "inputs": [image_input([b64(CAT)])]}, "'id' must be a string"),
    ],
)
def test_v2_infer_errors_use_the_protocol_form(app_client: FlaskClient, body: object, message: str) -> None:
    assert_v2_error(app_client.post(INFER, json=body), 400, message)


def test_v2_infer_error_cases_outside_json(app_client: FlaskClient) -> None:
    assert_v2_error(app_client.post(INFER, data=b"{not json"), 400, "not valid JSON")
    assert_v2_error(app_client.post(INFER, data=b"{}", headers={"Inference-Header-Content-Length": "99"}), 400, "does not fit")
    body = {"inputs": [image_input([b64(CAT)])]}
    assert_v2_error(app_client.post("/v2/models/resnet50/infer", json=body), 404, "unknown model 'resnet50'")
    assert_v2_error(app_client.post(f"/v2/models/{MODEL}/versions/2/infer", json=body), 404, "unknown version '2'")
    assert_v2_error(app_client.get(f"/v2/models/{MODEL}/versions/2"), 404, "unknown version '2'")
    assert_v2_error(app_client.get("/v2/models/resnet50/ready"), 404, "unknown model")
    assert_v2_error(app_client.get(INFER), 405, "The method is not allowed for the requested URL.")


def test_v2_too_many_images_and_oversize_body(inference_service: InferenceService) -> None:
    """Limits of its own (the checks come before any inference), so an app of its own."""
    settings = dataclasses.replace(inference_service.settings, max_images_per_request=2, max_body_bytes=100_000, threads=1)
    app = create_app(settings)
    models = app.extensions["densenet_models"]
    models.default.load()
    try:
        client = app.test_client()
        response = client.post(INFER, json={"inputs": [image_input([b64(b"x")] * 3)]})
        assert_v2_error(response, 400, "limit is 2 per request")
        assert_v2_error(client.post(INFER, data=b"{" + b" " * 100_000 + b"}"), 413, "100000 bytes")
    finally:
        models.stop()


# --- before the model is loaded ------------------------------------------------------------------------


@pytest.fixture
def unloaded_client() -> FlaskClient:
    return create_app(Settings()).test_client()  # the service is never started


def test_not_ready_before_the_model_is_loaded(unloaded_client: FlaskClient) -> None:
    assert answer_of(unloaded_client, "/")["ready"] is False
    for path in ("/ready", "/inference/cat.jpg"):
        response = unloaded_client.get(path)
        assert_error(response, 503, "not_ready")
        assert response.headers["Retry-After"] == "1"


def test_uploads_before_the_model_is_loaded_are_503(unloaded_client: FlaskClient) -> None:
    response = unloaded_client.post("/inference", data=CAT, content_type="image/jpeg")
    assert "retry once GET /ready answers 200" in assert_error(response, 503, "not_ready")
    assert response.headers["Retry-After"] == "1"


def test_v2_before_the_model_is_loaded(unloaded_client: FlaskClient) -> None:
    assert unloaded_client.get("/v2/health/live").status_code == 200
    assert unloaded_client.get("/v2/health/live").get_json() == {"live": True}
    for path, body in (("/v2/health/ready", {"ready": False}), (f"/v2/models/{MODEL}/ready", {"name": MODEL, "ready": False})):
        response = unloaded_client.get(path)
        assert response.status_code == 400 and response.get_json() == body  # the protocol: 4xx is false
    response = unloaded_client.post(INFER, json={"inputs": [image_input([b64(CAT)])]})
    assert_v2_error(response, 503, "not ready")
    assert response.headers["Retry-After"] == "1"
    assert unloaded_client.get(f"/v2/models/{MODEL}").status_code == 200  # metadata needs no model


# --- several models: ?model=, /v2/models/<name>, the repository index --------------------------------


@pytest.fixture(scope="module")
def second_service(
    second_model: SecondModel, checkpoint_path: Path, images_dir: Path, tmp_path_factory: pytest.TempPathFactory,
    inference_service: InferenceService,
) -> Iterator[InferenceService]:
    """The models file's second model, loaded here, counting into the session service's metrics."""
    models_file = write_models_file(tmp_path_factory.mktemp("models") / "models.toml", checkpoint_path, second_model)
    settings = model_settings(Settings(models_file=models_file, images_dir=images_dir))[1]
    service = InferenceService(settings, metrics=inference_service.metrics)
    service.load()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def two_models(inference_service: InferenceService, second_service: InferenceService) -> FlaskClient:
    """DenseNet-121 (the default) and the multi-label ResNet-18 `xray` in one app."""
    return create_app(inference_service.settings, ServedModels([inference_service, second_service])).test_client()


@pytest.fixture
def second_unloaded(inference_service: InferenceService, second_model: SecondModel, images_dir: Path) -> FlaskClient:
    """The same two models while the second still loads (it never does here)."""
    settings = dataclasses.replace(
        inference_service.settings, model="resnet18", model_name=SECOND_NAME, weights=second_model.weights,
        labels=second_model.labels, multi_label=True,
    )
    return create_app(inference_service.settings, ServedModels([inference_service, InferenceService(settings)])).test_client()


def test_the_default_model_answers_without_model_and_with_its_name(two_models: FlaskClient, app_client: FlaskClient) -> None:
    alone = answer_of(app_client, "/inference/cat.jpg?top_k=7")
    assert answer_of(two_models, "/inference/cat.jpg?top_k=7") == alone
    assert answer_of(two_models, f"/inference/cat.jpg?top_k=7&model={MODEL}") == alone
    assert "labels" not in alone and "threshold" not in alone  # single-label: the seed's answer as it was
    uploaded = two_models.post(f"/inference?model={MODEL}&top_k=7", data=CAT, content_type="image/jpeg")
    assert_same_answer(uploaded.get_json(), alone)


def test_the_second_model_answers_by_name_with_its_labels(two_models: FlaskClient) -> None:
    body = answer_of(two_models, f"/inference/cat.jpg?model={SECOND_NAME}&top_k={len(SECOND_LABELS)}")
    assert body["model"] == SECOND_NAME
    assert sorted(entry["index"] for entry in body["top_k"]) == list(range(len(SECOND_LABELS)))
    assert {entry["label"] for entry in body["top_k"]} == set(SECOND_LABELS)
    for entry in body["top_k"]:
        assert entry["label"] == SECOND_LABELS[entry["index"]]
    # Multi-label: every class at or above the threshold, most probable first; sigmoids need not sum to 1.
    assert body["threshold"] == 0.5
    assert body["labels"] == [entry for entry in body["top_k"] if entry["probability"] >= 0.5]
    assert 0 < len(body["labels"]) < len(SECOND_LABELS)  # the fixture's logits are centred: some, not all
    assert abs(sum(entry["probability"] for entry in body["top_k"]) - 1.0) > 0.1
    uploaded = two_models.post(f"/inference?model={SECOND_NAME}&top_k=3", data=CAT, content_type="image/jpeg")
    expected = answer_of(two_models, f"/inference/cat.jpg?model={SECOND_NAME}&top_k=3")
    assert_same_answer(uploaded.get_json(), expected)
    assert uploaded.get_json()["labels"] == expected["labels"]


def test_top_k_is_bounded_by_the_chosen_models_classes(two_models: FlaskClient) -> None:
    message = assert_error(two_models.get(f"/inference/cat.jpg?model={SECOND_NAME}&top_k=15"), 400, "invalid_argument")
    assert message == "top_k must be an integer from 1 to 14, got '15'"
    response = two_models.post(f"/inference?model={SECOND_NAME}&top_k=15", data=CAT, content_type="image/jpeg")
    assert_error(response, 400, "invalid_argument")
    assert len(answer_of(two_models, "/inference/cat.jpg?top_k=15")["top_k"]) == 15  # the default has 1000


@pytest.mark.parametrize("name", ["resnet50", "", "XRAY", "xray "])
def test_an_unknown_model_is_404_on_every_route_that_takes_it(two_models: FlaskClient, name: str) -> None:
    query = {"model": name}
    answers = [
        two_models.get("/", query_string=query),
        two_models.get("/ready", query_string=query),
        two_models.get("/inference/cat.jpg", query_string=query),
        two_models.get("/inference/no-such-file.jpg", query_string=query),  # the model is looked up first
        two_models.post("/inference", query_string=query, data=CAT, content_type="image/jpeg"),
        two_models.post("/inference", query_string=query, data=CAT, content_type="text/plain"),
    ]
    for response in answers:
        message = assert_error(response, 404, "model_not_found")
        assert message == f"unknown model {name!r}; this server serves 'densenet121', 'xray'"


def test_liveness_lists_every_model(two_models: FlaskClient, inference_service: InferenceService) -> None:
    body = answer_of(two_models, "/")
    assert (body["model"], body["ready"]) == (MODEL, True)
    info = inference_service.info
    assert body["models"] == [
        {"name": MODEL, "architecture": "densenet121", "classes": 1000, "multi_label": False, "ready": True,
         "backend": info.backend, "device": info.device},
        {"name": SECOND_NAME, "architecture": "resnet18", "classes": 14, "multi_label": True, "ready": True,
         "backend": info.backend, "device": info.device},
    ]
    assert answer_of(two_models, f"/?model={SECOND_NAME}")["model"] == SECOND_NAME


def test_ready_waits_for_every_model(second_unloaded: FlaskClient) -> None:
    response = second_unloaded.get("/ready")
    assert assert_error(response, 503, "not_ready") == f"still loading: {SECOND_NAME}"
    assert response.headers["Retry-After"] == "1"
    assert answer_of(second_unloaded, f"/ready?model={MODEL}") == {"status": "ready", "model": MODEL}
    assert_error(second_unloaded.get(f"/ready?model={SECOND_NAME}"), 503, "not_ready")
    body = answer_of(second_unloaded, "/")
    assert body["ready"] is False and answer_of(second_unloaded, f"/?model={MODEL}")["ready"] is True
    # Its class count comes from its checkpoint, which is read when it loads.
    assert body["models"][1] == {"name": SECOND_NAME, "architecture": "resnet18", "classes": None,
                                 "multi_label": True, "ready": False}
    response = second_unloaded.get(f"/inference/cat.jpg?model={SECOND_NAME}")
    assert_error(response, 503, "not_ready")
    assert answer_of(second_unloaded, "/inference/cat.jpg")["model"] == MODEL  # the default serves meanwhile
    assert second_unloaded.get("/v2/health/ready").status_code == 400
    assert second_unloaded.get(f"/v2/models/{MODEL}/ready").status_code == 200
    response = second_unloaded.get(f"/v2/models/{SECOND_NAME}/ready")
    assert response.status_code == 400 and response.get_json() == {"name": SECOND_NAME, "ready": False}


def test_v2_serves_each_model_by_name(two_models: FlaskClient) -> None:
    metadata = answer_of(two_models, f"/v2/models/{SECOND_NAME}")
    assert metadata["name"] == SECOND_NAME and metadata["versions"] == ["1"]
    assert {"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]} in metadata["inputs"]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 14]}]
    assert answer_of(two_models, f"/v2/models/{SECOND_NAME}/versions/1") == metadata
    assert answer_of(two_models, f"/v2/models/{MODEL}")["outputs"][0]["shape"] == [-1, 1000]
    body = {"inputs": [image_input([b64(CAT)])], "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]}
    response = two_models.post(f"/v2/models/{SECOND_NAME}/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.get_json()
    assert (answer["model_name"], answer["model_version"]) == (SECOND_NAME, "1")
    top2 = answer_of(two_models, f"/inference/cat.jpg?model={SECOND_NAME}&top_k=2")["top_k"]
    assert [s.split(":", 2)[1:] for s in answer["outputs"][0]["data"]] == [[str(e["index"]), e["label"]] for e in top2]
    too_many = {"inputs": [image_input([b64(CAT)])], "outputs": [{"name": "probabilities", "parameters": {"classification": 15}}]}
    assert_v2_error(two_models.post(f"/v2/models/{SECOND_NAME}/infer", json=too_many), 400, "from 1 to 14")
    for path in ("/v2/models/resnet50", "/v2/models/resnet50/ready"):
        assert_v2_error(two_models.get(path), 404, "unknown model 'resnet50'; this server serves 'densenet121', 'xray'")
    assert_v2_error(two_models.post("/v2/models/resnet50/infer", json=body), 404, "unknown model 'resnet50'")
    assert_v2_error(two_models.get(f"/v2/models/{SECOND_NAME}/versions/2"), 404, "unknown version '2' of model 'xray'")


def test_v2_repository_index_lists_every_model(two_models: FlaskClient, second_unloaded: FlaskClient) -> None:
    both_ready = [{"name": MODEL, "version": "1", "state": "READY"}, {"name": SECOND_NAME, "version": "1", "state": "READY"}]
    assert answer_of_post(two_models, "/v2/repository/index") == both_ready
    assert answer_of_post(two_models, "/v2/repository/index", json={"ready": True}) == both_ready
    loading = answer_of_post(second_unloaded, "/v2/repository/index")
    assert loading == [both_ready[0], {"name": SECOND_NAME, "version": "1", "state": "UNAVAILABLE", "reason": "loading"}]
    assert answer_of_post(second_unloaded, "/v2/repository/index", json={"ready": True}) == both_ready[:1]
    assert answer_of_post(second_unloaded, "/v2/repository/index", json={"ready": False}) == loading
    assert_v2_error(two_models.post("/v2/repository/index", json={"ready": "yes"}), 400, "'ready' must be a boolean")
    assert_v2_error(two_models.post("/v2/repository/index", json=[1]), 400, "must be a JSON object")
    assert_v2_error(two_models.post("/v2/repository/index", data=b"{oops"), 400, "not valid JSON")
    assert_v2_error(two_models.get("/v2/repository/index"), 405, "not allowed")
    assert "model_repository" in answer_of(two_models, "/v2")["extensions"]


def test_v2_repository_refuses_to_load_or_unload(two_models: FlaskClient) -> None:
    for action in ("load", "unload"):
        assert_v2_error(two_models.post(f"/v2/repository/models/{SECOND_NAME}/{action}"), 400, "loads its models at start-up")
        assert_v2_error(two_models.post(f"/v2/repository/models/resnet50/{action}"), 404, "unknown model 'resnet50'")


def test_metrics_count_each_model_apart(two_models: FlaskClient, inference_service: InferenceService) -> None:
    registry = inference_service.metrics.registry

    def classified(model: str) -> float:
        return registry.get_sample_value("densenet_images_classified_total", {"model": model}) or 0.0

    before = {name: classified(name) for name in (MODEL, SECOND_NAME)}
    data = {"file": [(io.BytesIO(CAT), f"cat{i}.jpg", "image/jpeg") for i in range(2)]}
    assert two_models.post(f"/inference?model={SECOND_NAME}", data=data).status_code == 200
    assert classified(SECOND_NAME) - before[SECOND_NAME] == 2
    assert classified(MODEL) == before[MODEL]
    exposition = two_models.get("/metrics").get_data(as_text=True)
    assert f'densenet_images_classified_total{{model="{SECOND_NAME}"}}' in exposition
    assert f'densenet_images_classified_total{{model="{MODEL}"}}' in exposition


def test_the_openapi_document_names_the_served_models(two_models: FlaskClient) -> None:
    document = answer_of(two_models, "/openapi.json")
    names = [MODEL, SECOND_NAME]
    for path, method in (("/inference/{filename}", "get"), ("/inference", "post"), ("/", "get"), ("/ready", "get")):
        (model,) = [p for p in document["paths"][path][method]["parameters"] if p["name"] == "model"]
        assert model["in"] == "query" and model["schema"] == {"type": "string", "enum": names, "default": MODEL}, path
    (top_k,) = [p for p in document["paths"]["/inference"]["post"]["parameters"] if p["name"] == "top_k"]
    assert top_k["schema"]["maximum"] == 1000  # the largest class count; the chosen model's bound is its own
    for path in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}/infer"):
        (name,) = [p for p in document["paths"][path][next(iter(document["paths"][path]))]["parameters"] if p["name"] == "model_name"]
        assert name["schema"]["enum"] == names
    classification = document["components"]["schemas"]["Classification"]["properties"]
    assert classification["model"]["enum"] == names
    assert {"labels", "threshold"} <= set(classification)
    assert "`densenet121` (densenet121, 1000 classes); `xray` (resnet18, 14 classes, multi-label)" in document["info"]["description"]


def answer_of_post(client: FlaskClient, path: str, **kwargs: object) -> object:
    response = client.post(path, **kwargs)
    assert response.status_code == 200, response.text
    return response.get_json()
