"""API keys in-process: which routes need a key, the 401 answers in both error forms, a refused request
reaching no route and no model, /metrics behind the key unless --metrics-open, and the OpenAPI document
saying the same as the server. The real server (SIGHUP rotation, logs, start-up refusal) is tested in
tests/e2e/test_access_control.py."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.answers import assert_error
from support.paths import REPO_IMAGES
from werkzeug.test import TestResponse

from densenet_server.access_policy import open_paths, openapi_path
from densenet_server.app import create_app
from densenet_server.service import InferenceService

MODEL = "densenet121"
KEY = "first-test-key-0123456789"
OTHER_KEY = "second-test-key-abcdefghij"
WITH_KEY = {"Authorization": f"Bearer {KEY}"}
CAT = (REPO_IMAGES / "cat.jpg").read_bytes()
CHALLENGE = 'Bearer realm="densenet-server"'
# What answers without a key, written out: a route opened (or closed) by mistake fails here.
OPEN = {
    ("GET", "/"),
    ("GET", "/ready"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", f"/v2/models/{MODEL}/ready"),
    ("GET", f"/v2/models/{MODEL}/versions/1/ready"),
    ("GET", "/ui"),
    ("GET", "/static/ui/ui.js"),
}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    path.write_text(f"# test keys\n{KEY}\n\n{OTHER_KEY}\n")
    return path


def keyed_app(service: InferenceService, keys_file: Path, metrics_open: bool = False) -> Flask:
    settings = dataclasses.replace(service.settings, api_keys_file=keys_file, metrics_open=metrics_open)
    return create_app(settings, service)


@pytest.fixture(scope="module")
def keyed(inference_service: InferenceService, keys_file: Path) -> FlaskClient:
    return keyed_app(inference_service, keys_file).test_client()


def concrete_path(rule: str) -> str:
    """A path that matches the Flask ``rule``, naming things that exist."""
    values = {"model_name": MODEL, "model_version": "1", "filename": "ui/ui.js" if rule.startswith("/static/") else "cat.jpg"}
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda match: values[match.group(1)], rule)


def every_route(app: Flask) -> list[tuple[str, str, str]]:
    """(method, concrete path, rule) of every route of ``app``."""
    return sorted(
        (method, concrete_path(rule.rule), rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def assert_refused(response: TestResponse, path: str, presented: bool = False) -> None:
    """401 in the error form of ``path`` with the Bearer challenge; ``presented``: a key was sent and refused."""
    if path == "/v2" or path.startswith("/v2/"):
        assert response.status_code == 401, response.text
        assert response.get_json() == {"error": "the API key was not accepted" if presented else
                                       "this server needs an API key: send the header 'Authorization: Bearer <key>'"}
    else:
        message = assert_error(response, 401, "unauthorized")
        assert message == ("the API key was not accepted" if presented else
                           "this server needs an API key: send the header 'Authorization: Bearer <key>'")
    assert response.headers["WWW-Authenticate"] == (CHALLENGE + ', error="invalid_token"' if presented else CHALLENGE)
    assert response.headers["X-Request-ID"]  # the observability hooks ran: the refusal is traceable


def test_every_route_needs_a_key_but_probes_and_the_page(keyed: FlaskClient) -> None:
    answered_without_key = set()
    for method, path, _ in every_route(keyed.application):
        response = keyed.open(path, method=method)
        if response.status_code == 401:
            assert_refused(response, path)
            assert keyed.open(path, method=method, headers=WITH_KEY).status_code != 401, path
        else:
            answered_without_key.add((method, path))
    assert answered_without_key == OPEN


def test_the_openapi_document_marks_exactly_the_refused_operations(keyed: FlaskClient) -> None:
    document = keyed.get("/openapi.json", headers=WITH_KEY).get_json()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, rule in every_route(keyed.application):
        operation = document["paths"][openapi_path(rule)][method.lower()]
        refused = keyed.open(path, method=method).status_code == 401
        assert ("security" in operation) is refused, (method, path)
        if refused:
            assert operation["security"] == [{"bearerAuth": []}]
            answer = operation["responses"]["401"]
            expected = "V2Error" if path.startswith("/v2") else "Error"
            assert answer["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{expected}"}
            assert "WWW-Authenticate" in answer["headers"]
        else:
            assert "401" not in operation["responses"]


def test_the_keyed_document_is_a_valid_openapi_31_document(keyed: FlaskClient) -> None:
    import schemathesis

    document = keyed.get("/openapi.json", headers=WITH_KEY).get_json()
    schema = schemathesis.openapi.from_dict(document)
    assert all(result.ok() for result in schema.get_all_operations())


def test_without_keys_nothing_is_refused_or_documented_as_secured(app_client: FlaskClient) -> None:
    assert app_client.get("/").get_json()["auth"] == "none"
    assert app_client.get("/metrics").status_code == 200
    assert app_client.get("/inference/cat.jpg").status_code == 200
    document = app_client.get("/openapi.json").get_json()
    assert "securitySchemes" not in document["components"]
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    assert not any("security" in op or "401" in op["responses"] for op in operations)


def test_get_root_tells_the_page_that_a_key_is_needed(keyed: FlaskClient) -> None:
    assert keyed.get("/").get_json()["auth"] == "bearer"


@pytest.mark.parametrize(
    ("authorization", "presented"),
    [
        (None, False),
        ("Bearer", False),  # a scheme without a token
        (KEY, False),  # a token without the scheme
        (f"Basic {base64.b64encode(f'user:{KEY}'.encode()).decode()}", False),
        ("Bearer not-one-of-the-server-keys", True),
        (f"Bearer {KEY[:-1]}", True),  # all but the last character
        (f"Bearer {KEY}x", True),
    ],
)
def test_no_valid_key_is_refused(keyed: FlaskClient, authorization: str | None, presented: bool) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for path in ("/inference/cat.jpg", f"/v2/models/{MODEL}"):
        assert_refused(keyed.get(path, headers=headers), path, presented)


@pytest.mark.parametrize("authorization", [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER  {KEY} ", f"Bearer {OTHER_KEY}"])
def test_each_key_of_the_file_is_accepted(keyed: FlaskClient, authorization: str) -> None:
    response = keyed.get("/inference/cat.jpg", headers={"Authorization": authorization})
    assert response.status_code == 200 and response.get_json()["model"] == MODEL


def test_an_unknown_path_is_refused_not_reported_missing(keyed: FlaskClient) -> None:
    # A caller without a key learns nothing of which paths exist.
    assert_refused(keyed.get("/no/such/path"), "/no/such/path")
    assert_refused(keyed.get("/v2/no/such/path"), "/v2/no/such/path")
    assert_error(keyed.get("/no/such/path", headers=WITH_KEY), 404, "not_found")


@pytest.fixture
def model_calls(inference_service: InferenceService, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the service's model entry points called (every route's way to a model passes one)."""
    calls: list[str] = []

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)

        return recorded

    for name in ("image_probabilities", "prepare_many", "prepare", "probabilities"):
        monkeypatch.setattr(inference_service, name, spy(name, getattr(inference_service, name)))
    yield calls


def test_a_refused_request_reaches_no_route_and_no_model(keyed: FlaskClient, model_calls: list[str]) -> None:
    infer = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(CAT).decode()]}]}
    refused = [
        keyed.get("/inference/cat.jpg"),
        keyed.post("/inference", data=CAT, content_type="image/jpeg"),
        keyed.post(f"/v2/models/{MODEL}/infer", json=infer),
        # What a route would answer otherwise (404 unknown model, 413 body too large, 400 bad JSON) is
        # never computed: the key is checked first, and the body is never read.
        keyed.get("/inference/cat.jpg?model=nope"),
        keyed.post("/v2/models/nope/infer", json=infer),
        keyed.post("/inference", data=b"x" * (keyed.application.config["MAX_CONTENT_LENGTH"] + 1), content_type="image/jpeg"),
        keyed.post(f"/v2/models/{MODEL}/infer", data=b"{not json", content_type="application/json"),
    ]
    assert [response.status_code for response in refused] == [401] * len(refused)
    assert model_calls == []
    # The spy sees a request that is let in.
    assert keyed.post(f"/v2/models/{MODEL}/infer", json=infer, headers=WITH_KEY).status_code == 200
    assert model_calls


def test_metrics_need_a_key_unless_metrics_open(inference_service: InferenceService, keys_file: Path, keyed: FlaskClient) -> None:
    assert_refused(keyed.get("/metrics"), "/metrics")
    assert keyed.get("/metrics", headers=WITH_KEY).status_code == 200
    opened = keyed_app(inference_service, keys_file, metrics_open=True).test_client()
    assert opened.get("/metrics").status_code == 200
    assert_refused(opened.get("/inference/cat.jpg"), "/inference/cat.jpg")  # nothing else opens with it
    document = opened.get("/openapi.json", headers=WITH_KEY).get_json()
    assert "security" not in document["paths"]["/metrics"]["get"]
    assert "/metrics" in open_paths(metrics_open=True) and "/metrics" not in open_paths(metrics_open=False)
