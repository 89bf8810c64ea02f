"""The container's health check: is this server ready? (`python -m densenet_server.healthcheck`)

GET /ready on 127.0.0.1 and the configured port (DENSENET_PORT), over HTTPS when the server serves TLS
(DENSENET_CERTFILE): a check written as a plain-HTTP one-liner would fail forever once TLS is on. The
certificate is not verified: it names the host clients use, not 127.0.0.1, and this asks whether the
process answers, not who it is. Exit status 0 when ready, 1 otherwise (Docker's HEALTHCHECK contract).
"""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request

from .config import Settings, load_settings

TIMEOUT_S = 4.0


def ready_url(settings: Settings) -> str:
    scheme = "https" if settings.certfile is not None else "http"
    return f"{scheme}://127.0.0.1:{settings.port}/ready"


def is_ready(settings: Settings) -> bool:
    context = ssl._create_unverified_context() if settings.certfile is not None else None  # noqa: S323 - see above
    try:
        with urllib.request.urlopen(ready_url(settings), timeout=TIMEOUT_S, context=context) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


def main() -> int:
    return 0 if is_ready(load_settings({})) else 1


if __name__ == "__main__":
    sys.exit(main())
