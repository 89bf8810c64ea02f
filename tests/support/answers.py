"""Assertions on the server's JSON answers, for responses of the real server (requests) and of the
in-process app (Flask's test client) alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests
from werkzeug.test import TestResponse

from densenet_server.model_record import DENSENET121

Response = requests.Response | TestResponse

# Probabilities of one image computed in another forward pass (another batch, process or thread count)
# differ by float32 rounding only.
FLOAT32_NOISE = 1e-5
_PROBABILITY_FIELDS = ("probability", "top_k")


def json_of(response: Response) -> Any:
    return response.json() if isinstance(response, requests.Response) else response.get_json()


def assert_error(response: Response, status: int, code: str) -> str:
    """The server's error form, {"error": {"code", "message"}}, with ``status`` and ``code``; returns the
    message (never empty) for the caller to check what it says."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = json_of(response)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])


def assert_same_answer(actual: dict[str, Any], expected: dict[str, Any], atol: float = FLOAT32_NOISE) -> None:
    """The same answer: every field equal, the ranking and labels identical, probabilities within ``atol``."""
    assert {k: v for k, v in actual.items() if k not in _PROBABILITY_FIELDS} == {
        k: v for k, v in expected.items() if k not in _PROBABILITY_FIELDS
    }
    assert [(e["index"], e["label"]) for e in actual["top_k"]] == [(e["index"], e["label"]) for e in expected["top_k"]]
    for got, want in zip(actual["top_k"], expected["top_k"]):
        assert got["probability"] == pytest.approx(want["probability"], abs=atol)
    assert actual["probability"] == pytest.approx(expected["probability"], abs=atol)


def probability_row(answer: dict[str, Any], classes: int = DENSENET121.num_classes) -> np.ndarray:
    """The answer's top-k probabilities as a row of all ``classes`` (0 for those not in the top k); the
    default model's classes by default."""
    row = np.zeros(classes)
    for entry in answer["top_k"]:
        row[entry["index"]] = entry["probability"]
    return row
