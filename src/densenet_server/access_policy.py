"""Which routes need an API key when the server has keys (--api-keys-file): every route but those that
probes and a browser's first visit need.

One list, read by the request hook (routes/access_control.py) and by the OpenAPI document, so that the
document cannot call a route open while the server refuses it, or the reverse. No Flask here.
"""

from __future__ import annotations

import re

# Probes send no key (Kubernetes' httpGet cannot), so liveness and readiness stay open; they tell nothing
# but whether the process and its models are up. The web page's shell (HTML, script, style) stays open
# too: a browser navigating to /ui cannot send an Authorization header, the page is where a key is
# entered, and it holds no data of its own (everything it shows comes from calls that send the key).
OPEN_RULES = frozenset(
    {
        "/",
        "/ready",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/<model_name>/ready",
        "/v2/models/<model_name>/versions/<model_version>/ready",
        "/ui",
        "/static/<path:filename>",
    }
)
METRICS_RULE = "/metrics"

_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def needs_key(rule: str | None, metrics_open: bool) -> bool:
    """Whether a request that matched the URL rule ``rule`` needs a key (``rule`` None: no route matched).

    Anything not listed as open needs one, a route added later included, and so does a path that matches
    no route: it is answered 401 rather than 404, so that a caller without a key learns nothing of which
    paths exist."""
    if rule == METRICS_RULE:
        return not metrics_open
    return rule not in OPEN_RULES


def openapi_path(rule: str) -> str:
    """The OpenAPI form of a Flask URL rule: /v2/models/<model_name>/ready -> /v2/models/{model_name}/ready."""
    return _VARIABLE.sub(r"{\1}", rule)


def open_paths(metrics_open: bool) -> frozenset[str]:
    """The OpenAPI paths that need no key."""
    rules = OPEN_RULES | ({METRICS_RULE} if metrics_open else set())
    return frozenset(openapi_path(rule) for rule in rules)
