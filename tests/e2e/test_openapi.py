"""The OpenAPI document covers every route, is valid, and real answers conform to it; /docs works offline."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jsonschema
import pytest
from support.server_process import ServerProcess

from densenet_server.app import create_app
from densenet_server.config import Settings

STATIC = Path(__file__).resolve().parents[2] / "src" / "densenet_server" / "static"
CAT = (Path(__file__).resolve().parents[2] / "images" / "cat.jpg").read_bytes()


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    app = create_app(Settings())
    document = app.test_client().get("/openapi.json").get_json()
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        routes.setdefault(openapi_path(rule.rule), set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(operations) for path, operations in document["paths"].items()}
    routes = {openapi_path(p.replace("<model_name>", "{model_name}")): m for p, m in routes.items()}
    assert documented == routes


def test_the_document_is_a_valid_openapi_31_document() -> None:
    import schemathesis

    document = create_app(Settings()).test_client().get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in document["paths"].values())
    for name, component in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(component)


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> dict:
    response = server.get("/openapi.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    return response.json()


def conforms(document: dict, component: str, instance: object) -> None:
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)


def test_real_answers_conform_to_the_document(server: ServerProcess, document: dict) -> None:
    conforms(document, "Liveness", server.get("/").json())
    conforms(document, "Readiness", server.get("/ready").json())
    conforms(document, "Classification", server.get("/inference/cat.jpg").json())
    conforms(document, "Error", server.get("/inference/missing.jpg").json())
    conforms(document, "Classification", server.post("/inference", data=CAT, headers={"Content-Type": "image/jpeg"}).json())
    files = [("file", ("a.jpg", CAT, "image/jpeg")), ("file", ("b.jpg", b"junk", "image/jpeg"))]
    conforms(document, "UploadResults", server.post("/inference", files=files).json())
    conforms(document, "V2ServerMetadata", server.get("/v2").json())
    conforms(document, "V2ModelMetadata", server.get("/v2/models/densenet121").json())
    body = {"id": "1", "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(CAT).decode()]}],
            "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}, {"name": "probabilities"}]}
    infer = server.post("/v2/models/densenet121/infer", json=body).json()
    conforms(document, "V2InferResponse", infer)
    conforms(document, "V2InferRequest", body)
    conforms(document, "V2Error", server.get("/v2/models/nope").json())
    conforms(document, "V2RepositoryIndex", server.post("/v2/repository/index").json())


def test_a_two_model_servers_answers_conform_to_its_document(several_models_server: ServerProcess) -> None:
    server = several_models_server
    document = server.get("/openapi.json").json()
    multi_label = server.get("/inference/cat.jpg", params={"model": "xray"}).json()
    assert {"labels", "threshold"} <= set(multi_label)
    conforms(document, "Classification", multi_label)
    conforms(document, "Classification", server.get("/inference/cat.jpg").json())
    files = [("file", ("a.jpg", CAT, "image/jpeg")), ("file", ("b.jpg", b"junk", "image/jpeg"))]
    conforms(document, "UploadResults", server.post("/inference", params={"model": "xray"}, files=files).json())
    conforms(document, "Liveness", server.get("/").json())
    conforms(document, "Readiness", server.get("/ready", params={"model": "xray"}).json())
    conforms(document, "Error", server.get("/inference/cat.jpg", params={"model": "nope"}).json())
    conforms(document, "V2ModelMetadata", server.get("/v2/models/xray").json())
    conforms(document, "V2RepositoryIndex", server.post("/v2/repository/index").json())
    # The schema names the served models: an answer from another model would not conform.
    with pytest.raises(jsonschema.ValidationError, match="'resnet50' is not one of"):
        conforms(document, "Classification", {**multi_label, "model": "resnet50"})
    # top_k's bound is the largest class count; each model's own is checked by the route (400).
    top_k = next(p for p in document["paths"]["/inference"]["post"]["parameters"] if p["name"] == "top_k")
    assert top_k["schema"]["maximum"] == 1000


def test_docs_page_uses_only_vendored_assets(server: ServerProcess) -> None:
    page = server.get("/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/static/") for asset in assets), assets
    for asset in assets:
        response = server.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert (STATIC / "swagger-ui" / "LICENSE").is_file()
    for html in STATIC.rglob("*.html"):
        assert "http://" not in html.read_text() and "https://" not in html.read_text(), html


def test_unknown_static_asset_is_a_json_404(server: ServerProcess) -> None:
    response = server.get("/static/nothing-here.js")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
