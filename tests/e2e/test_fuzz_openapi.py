"""Schemathesis against the server's own OpenAPI document: every route, valid and invalid requests made up
from the document, sent to the real server; every answer must be no 5xx, a documented status, of the
documented content type, and match the documented schema. Seeded and bounded, so CI stays fast."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies
from schemathesis import GenerationMode, checks
from support.server_process import ServerProcess

from densenet_server.app import create_app
from densenet_server.config import Settings

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
# Seeded, so that a run repeats the last one; no deadline, as inference on 2 cores takes its time.
SEEDED: dict[str, Any] = {
    "derandomize": True, "deadline": None, "database": None, "suppress_health_check": list(HealthCheck),
}

# The document the `server` fixture serves: it depends on the settings only, and that server runs with
# the defaults for everything the document mentions. Loaded here because parametrizing needs it at
# collection, before any server runs.
schema = schemathesis.openapi.from_dict(create_app(Settings()).test_client().get("/openapi.json").get_json())


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, **SEEDED)
def test_every_route_answers_as_documented(case: schemathesis.Case, server: ServerProcess) -> None:
    case.call_and_validate(base_url=server.base_url, checks=CHECKS, timeout=60)


# What a server of several models documents differently: the `model` parameter (?model= and /v2's
# model_name, enums of its names), top_k's bound and the answers' `model`, `labels` and `threshold`.
MODEL_OPERATIONS = (
    "liveness", "readiness", "classifyFile", "classifyUploads", "v2ModelMetadata", "v2ModelReadyVersioned",
    "v2Infer", "v2RepositoryIndex", "v2RepositoryLoad",
)
EXAMPLES_PER_MODEL_OPERATION = 15


@pytest.mark.parametrize("operation_id", MODEL_OPERATIONS)
def test_a_two_model_server_answers_as_documented(several_models_server: ServerProcess, operation_id: str) -> None:
    """The served document, fetched from the running server: it names the models it serves."""
    document = several_models_server.get("/openapi.json").json()
    operation = schemathesis.openapi.from_dict(document).find_operation_by_id(operation_id)
    cases = strategies.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES_PER_MODEL_OPERATION, **SEEDED)
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=several_models_server.base_url, checks=CHECKS, timeout=60)

    answers_as_documented()
