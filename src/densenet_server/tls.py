"""TLS of the server's own ports (--certfile/--keyfile): checked once at start-up, before anything forks,
and read as PEM bytes for the gRPC server (grpcio takes the bytes; gunicorn takes the paths itself).

Where an ingress, a service mesh or a load balancer terminates TLS, leave both unset (README, "TLS").
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from .config import Settings


class TlsError(ValueError):
    """The certificate or its key cannot be used. Never quotes the key's content."""


@dataclass(frozen=True)
class PemPair:
    """A certificate chain and its private key, PEM-encoded, as grpc.ssl_server_credentials takes them."""

    certificate_chain: bytes
    private_key: bytes


def tls_files(settings: Settings) -> tuple[Path, Path] | None:
    """(certfile, keyfile), or None when the server speaks plain HTTP (config.validate: both or neither)."""
    if settings.certfile is None or settings.keyfile is None:
        return None
    return settings.certfile, settings.keyfile


def check_tls(settings: Settings) -> None:
    """TlsError unless the configured certificate and key load, and belong together. Without this a
    mistake would surface only at each connection's handshake, as an error in the log and a reset."""
    files = tls_files(settings)
    if files is None:
        return
    certfile, keyfile = files
    for path in files:
        if not path.is_file():
            raise TlsError(f"TLS: {path} is not a readable file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        # ssl's reason (e.g. KEY_VALUES_MISMATCH, NO_START_LINE) names the problem, never the key.
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise TlsError(f"TLS: cannot use certificate {certfile} with key {keyfile}: {reason}") from None


def read_pem(settings: Settings) -> PemPair | None:
    """The certificate chain and key for the gRPC server, or None without TLS."""
    files = tls_files(settings)
    if files is None:
        return None
    certfile, keyfile = files
    return PemPair(certfile.read_bytes(), keyfile.read_bytes())
