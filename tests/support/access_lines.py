"""Reading the server's JSON access-log lines out of its output."""

from __future__ import annotations

import json
from typing import Any


def access_line(log: str, request_id: str) -> dict[str, Any]:
    """The one access-log line of ``request_id`` in a server's output."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{") and request_id in line]
    matching = [line for line in lines if line["request_id"] == request_id]
    assert len(matching) == 1, matching
    return matching[0]
