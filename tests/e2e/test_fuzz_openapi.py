"""Schemathesis against the server's own OpenAPI document: every route, valid and invalid requests made up
from the document, sent to the real server; every answer must be no 5xx, a documented status, of the
documented content type, and match the documented schema. Seeded and bounded, so CI stays fast."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
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

# The document the `server` fixture serves: it depends on the settings only, and that server runs with
# the defaults for everything the document mentions. Loaded here because parametrizing needs it at
# collection, before any server runs.
schema = schemathesis.openapi.from_dict(create_app(Settings()).test_client().get("/openapi.json").get_json())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_route_answers_as_documented(case: schemathesis.Case, server: ServerProcess) -> None:
    case.call_and_validate(base_url=server.base_url, checks=CHECKS, timeout=60)
