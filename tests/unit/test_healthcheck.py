"""The container's health check follows the server: HTTP or HTTPS, ready or not."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.certificates import self_signed

from densenet_server.config import Settings
from densenet_server.healthcheck import is_ready, ready_url


class Ready(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def serving(status: int, context: ssl.SSLContext | None = None) -> Iterator[int]:
    handler = type("Handler", (Ready,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_url_follows_tls(tmp_path: Path) -> None:
    assert ready_url(Settings(port=5000)) == "http://127.0.0.1:5000/ready"
    tls = Settings(port=5000, certfile=tmp_path / "c.pem", keyfile=tmp_path / "k.pem")
    assert ready_url(tls) == "https://127.0.0.1:5000/ready"


@pytest.mark.parametrize(("status", "ready"), [(200, True), (503, False)])
def test_plain_http(status: int, ready: bool) -> None:
    with serving(status) as port:
        assert is_ready(Settings(port=port)) is ready


def test_https_with_a_certificate_for_another_name(tmp_path: Path) -> None:
    certificate = self_signed(tmp_path, host="192.0.2.1")  # not 127.0.0.1: the name clients use
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.certfile, certificate.keyfile)
    with serving(200, context) as port:
        tls = Settings(port=port, certfile=certificate.certfile, keyfile=certificate.keyfile)
        assert is_ready(tls)
        assert not is_ready(Settings(port=port)), "plain HTTP to a TLS port is not ready"


def test_nothing_listening_is_not_ready() -> None:
    with serving(200) as port:
        pass
    assert not is_ready(Settings(port=port))
