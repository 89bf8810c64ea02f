"""API keys: who may use the model. Read from a file (never the command line, never logged), re-read on
demand (SIGHUP) so that keys rotate without a restart, compared in constant time.

The file holds one key per line; blank lines and lines starting with '#' are ignored. Only the keys'
SHA-256 digests are kept in memory, and a presented key is compared with every one of them with
hmac.compare_digest, so neither the time taken nor an early exit tells how much of a key was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BEARER = "bearer"
# Short keys are guessable; 16 characters of a random token are ~96 bits or more.
MIN_KEY_LENGTH = 16


class ApiKeysError(ValueError):
    """The keys file cannot be used (missing, unreadable, no key, a key too short)."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def read_keys(path: Path) -> list[bytes]:
    """The digests of the keys in ``path``; ApiKeysError (which never quotes a key) if it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiKeysError(f"cannot read the API keys file {path}: {exc.__class__.__name__}") from None
    keys = [line.strip() for line in text.splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        raise ApiKeysError(f"the API keys file {path} holds no key")
    short = [number for number, key in enumerate(keys, 1) if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key)]
    if short:
        raise ApiKeysError(
            f"the API keys file {path}: key(s) number {', '.join(map(str, short))} are shorter than "
            f"{MIN_KEY_LENGTH} characters or contain spaces"
        )
    return [_digest(key) for key in keys]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme is case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == BEARER and token else None


class ApiKeys:
    """The keys of one process. Without a file every request is allowed (no access control)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._digests: list[bytes] = read_keys(path) if path is not None else []

    @property
    def required(self) -> bool:
        return self.path is not None

    @property
    def count(self) -> int:
        return len(self._digests)

    def reload(self) -> bool:
        """Re-read the file. A file that has become unusable keeps the keys in force (an edit in
        progress must neither lock everyone out nor let everyone in); the error is logged."""
        if self.path is None:
            return False
        try:
            digests = read_keys(self.path)
        except ApiKeysError as exc:
            log.error("API keys not reloaded, the previous %d stay in force: %s", len(self._digests), exc)
            return False
        with self._lock:
            self._digests = digests
        log.info("API keys reloaded: %d key(s)", len(digests))
        return True

    def allows(self, token: str | None) -> bool:
        """Whether ``token`` is one of the keys (always, when no keys file is configured)."""
        if not self.required:
            return True
        if token is None:
            return False
        presented = _digest(token)
        with self._lock:
            digests = list(self._digests)
        matched = False
        for digest in digests:  # no early exit: every key is compared
            matched |= hmac.compare_digest(presented, digest)
        return matched
