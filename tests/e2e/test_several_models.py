"""End to end: one real server with two models from a models file: the session's DenseNet-121 checkpoint as
`densenet121` (the default) and a 14-class multi-label ResNet-18 as `xray`. Each answers by name on every
route, with its own labels and class count; the second agrees with torchvision's own pipeline (its
weights' transforms(), the model, a sigmoid per class); the default model answers as a one-model server does.

One server for the whole file (and the session: conftest's several_models_server), as starting one costs
two model loads on a 2-core machine.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
import tritonclient.http as triton
from support.answers import assert_error, assert_same_answer, probability_row
from support.paths import REPO_IMAGES
from support.reference import reference_probabilities
from support.scraping import delta, scrape
from support.server_process import ServerProcess
from support.several_models import (
    DEFAULT_NAME,
    SECOND_ARCHITECTURE,
    SECOND_LABELS,
    SECOND_NAME,
    SecondModel,
)
from torch import nn
from tritonclient.utils import InferenceServerException

PHOTOS = [REPO_IMAGES / name for name in ("cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg")]
CAT = PHOTOS[0].read_bytes()
CLASSES = {DEFAULT_NAME: 1000, SECOND_NAME: len(SECOND_LABELS)}
THRESHOLD = 0.5  # the models file sets none: the default
# The seed's answer: exactly these fields for the default model (a warning: the weights are not published).
SEED_FIELDS = {"class", "index", "probability", "top_k", "model", "weights", "weights_published", "backend",
               "precision", "device", "warning"}
PARITY = 1e-4


@pytest.fixture(scope="module")
def server(several_models_server: ServerProcess) -> ServerProcess:
    return several_models_server


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=f"127.0.0.1:{server.port}", network_timeout=120.0)


def answer(server: ServerProcess, path: str, **params: object) -> dict:
    response = server.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def uploaded(server: ServerProcess, data: bytes, **params: object) -> dict:
    response = server.post("/inference", params=params, data=data, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def test_ready_once_both_models_are_loaded(server: ServerProcess) -> None:
    # ServerProcess.start waited for /ready's 200; by then every model must be loaded.
    assert answer(server, "/ready") == {"status": "ready", "model": DEFAULT_NAME}
    body = answer(server, "/")
    assert (body["model"], body["ready"]) == (DEFAULT_NAME, True)
    models = body["models"]
    assert [(m["name"], m["architecture"], m["classes"], m["multi_label"], m["ready"]) for m in models] == [
        (DEFAULT_NAME, "densenet121", 1000, False, True),
        (SECOND_NAME, SECOND_ARCHITECTURE, 14, True, True),
    ]
    assert all(m["backend"] == "onnxruntime" and m["device"] == "cpu" for m in models)
    assert answer(server, "/ready", model=SECOND_NAME) == {"status": "ready", "model": SECOND_NAME}
    assert server.get("/v2/health/ready").status_code == 200


@pytest.mark.parametrize("name", [DEFAULT_NAME, SECOND_NAME])
def test_each_model_answers_by_name_on_get_and_post(server: ServerProcess, name: str) -> None:
    classes = CLASSES[name]
    body = answer(server, "/inference/cat.jpg", model=name, top_k=classes)
    assert body["model"] == name
    assert sorted(entry["index"] for entry in body["top_k"]) == list(range(classes))
    if name == SECOND_NAME:
        assert [entry["label"] for entry in sorted(body["top_k"], key=lambda e: e["index"])] == list(SECOND_LABELS)
    assert_error(server.get("/inference/cat.jpg", params={"model": name, "top_k": classes + 1}), 400, "invalid_argument")
    same = uploaded(server, CAT, model=name, top_k=classes)
    # labels (multi-label only) hold probabilities too: compared by class, not bit for bit.
    assert [e["index"] for e in same.pop("labels", [])] == [e["index"] for e in body.pop("labels", [])]
    assert_same_answer(same, body)


def test_the_multi_label_model_agrees_with_torchvision(server: ServerProcess, second_model: SecondModel) -> None:
    expected = reference_probabilities(
        second_model.model, PHOTOS, architecture=SECOND_ARCHITECTURE, multi_label=True
    )
    label_sets: set[tuple[int, ...]] = set()
    for photo, reference in zip(PHOTOS, expected):
        body = answer(server, f"/inference/{photo.name}", model=SECOND_NAME, top_k=14)
        np.testing.assert_allclose(probability_row(body, 14), reference, atol=PARITY, rtol=0)
        assert body["index"] == int(np.argmax(reference))
        assert body["threshold"] == THRESHOLD
        chosen = [entry["index"] for entry in body["labels"]]
        assert sorted(chosen) == [int(i) for i in np.flatnonzero(reference >= THRESHOLD)]
        assert [entry["probability"] for entry in body["labels"]] == sorted(
            (entry["probability"] for entry in body["labels"]), reverse=True
        )
        assert all(entry["label"] == SECOND_LABELS[entry["index"]] for entry in body["labels"])
        label_sets.add(tuple(sorted(chosen)))
    # Discriminative: the photos get different labels, and none gets all or none of them.
    assert len(label_sets) > 1 and all(0 < len(labels) < 14 for labels in label_sets)


def test_the_default_model_answers_as_before(server: ServerProcess, reference_model: nn.Module) -> None:
    plain = answer(server, "/inference/cat.jpg")
    assert set(plain) == SEED_FIELDS  # no labels or threshold: a single-label model's answer
    assert plain["model"] == DEFAULT_NAME and len(plain["top_k"]) == 5
    assert answer(server, "/inference/cat.jpg", model=DEFAULT_NAME) == plain
    full = answer(server, "/inference/cat.jpg", top_k=1000)
    (reference,) = reference_probabilities(reference_model, PHOTOS[:1])
    np.testing.assert_allclose(probability_row(full), reference, atol=PARITY, rtol=0)
    assert set(uploaded(server, CAT)) == SEED_FIELDS


def test_an_unknown_model_is_404_everywhere(server: ServerProcess) -> None:
    for response in (
        server.get("/inference/cat.jpg", params={"model": "resnet50"}),
        server.post("/inference", params={"model": "resnet50"}, data=CAT, headers={"Content-Type": "image/jpeg"}),
        server.get("/", params={"model": "resnet50"}),
        server.get("/ready", params={"model": "resnet50"}),
    ):
        message = assert_error(response, 404, "model_not_found")
        assert message == "unknown model 'resnet50'; this server serves 'densenet121', 'xray'"
    body = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(CAT).decode()]}]}
    for response in (
        server.get("/v2/models/resnet50"),
        server.get("/v2/models/resnet50/ready"),
        server.post("/v2/models/resnet50/infer", json=body),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "unknown model 'resnet50'; this server serves 'densenet121', 'xray'"}


def test_v2_metadata_infer_and_repository_index_per_model(
    client: triton.InferenceServerClient, server: ServerProcess
) -> None:
    assert client.get_model_repository_index() == [
        {"name": DEFAULT_NAME, "version": "1", "state": "READY"},
        {"name": SECOND_NAME, "version": "1", "state": "READY"},
    ]
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([CAT], dtype=np.object_))
    for name, classes in CLASSES.items():
        assert client.is_model_ready(name)
        metadata = client.get_model_metadata(name)
        assert metadata["name"] == name and metadata["versions"] == ["1"]
        assert {"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 224, 224]} in metadata["inputs"]
        assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]}]
        result = client.infer(name, [image])
        assert result.get_response()["model_name"] == name
        probabilities = result.as_numpy("probabilities")
        assert probabilities.shape == (1, classes)
        expected = probability_row(answer(server, "/inference/cat.jpg", model=name, top_k=classes), classes)
        np.testing.assert_allclose(probabilities[0], expected, atol=1e-5)
    with pytest.raises(InferenceServerException, match="unknown model 'resnet50'"):
        client.get_model_metadata("resnet50")


def test_metrics_are_labelled_by_model(server: ServerProcess) -> None:
    before = scrape(server)
    files = [("file", (f"cat{i}.jpg", CAT, "image/jpeg")) for i in range(2)]
    assert server.post("/inference", params={"model": SECOND_NAME}, files=files).status_code == 200
    after = scrape(server)
    assert delta(before, after, "densenet_images_classified_total", model=SECOND_NAME) == 2
    assert delta(before, after, "densenet_images_classified_total", model=DEFAULT_NAME) == 0
    assert delta(before, after, "densenet_inference_batch_size_sum", model=SECOND_NAME) == 2
    assert delta(before, after, "densenet_inference_batch_size_count", model=DEFAULT_NAME) == 0
    for name in CLASSES:
        assert after[("densenet_model_ready", (("model", name),))] == 1
