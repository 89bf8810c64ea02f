"""tls.py: the certificate and key are checked before the server starts, and read as PEM for gRPC."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.certificates import self_signed

from densenet_server.config import Settings
from densenet_server.tls import PemPair, TlsError, check_tls, read_pem, tls_files


def test_without_tls_nothing_is_checked_or_read() -> None:
    check_tls(Settings())
    assert tls_files(Settings()) is None
    assert read_pem(Settings()) is None


def test_a_matching_pair_passes_and_is_read_as_pem(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    settings = Settings(certfile=made.certfile, keyfile=made.keyfile)
    check_tls(settings)
    assert tls_files(settings) == (made.certfile, made.keyfile)
    pem = read_pem(settings)
    assert pem == PemPair(made.certfile.read_bytes(), made.keyfile.read_bytes())
    assert pem.certificate_chain.startswith(b"-----BEGIN CERTIFICATE-----")
    assert pem.private_key.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_key_of_another_certificate_is_refused_without_quoting_it(tmp_path: Path) -> None:
    one, other = self_signed(tmp_path, "one"), self_signed(tmp_path, "other")
    with pytest.raises(TlsError, match="cannot use certificate .*one.crt with key .*other.key: KEY_VALUES_MISMATCH") as caught:
        check_tls(Settings(certfile=one.certfile, keyfile=other.keyfile))
    assert other.keyfile.read_text().splitlines()[1] not in str(caught.value)


@pytest.mark.parametrize("broken", ["certfile", "keyfile"])
def test_a_file_that_is_not_pem_is_refused(tmp_path: Path, broken: str) -> None:
    made = self_signed(tmp_path)
    getattr(made, broken).write_text("not a PEM file\n")
    with pytest.raises(TlsError, match="cannot use certificate"):
        check_tls(Settings(certfile=made.certfile, keyfile=made.keyfile))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    made = self_signed(tmp_path)
    with pytest.raises(TlsError, match=r"TLS: .*missing.key is not a readable file"):
        check_tls(Settings(certfile=made.certfile, keyfile=tmp_path / "missing.key"))
