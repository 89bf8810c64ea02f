from __future__ import annotations

import logging
from pathlib import Path

import pytest

from densenet_server.api_keys import MIN_KEY_LENGTH, ApiKeys, ApiKeysError, bearer_token, read_keys

KEY_A = "a" * 8 + "-key-one-0123456789"
KEY_B = "b" * 8 + "-key-two-0123456789"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_without_a_file_everyone_is_allowed() -> None:
    keys = ApiKeys(None)
    assert not keys.required
    assert keys.allows(None) and keys.allows("anything")


def test_only_listed_keys_are_allowed(tmp_path: Path) -> None:
    keys = ApiKeys(write(tmp_path / "keys", "# comment", "", KEY_A, f"  {KEY_B}  "))
    assert keys.required and keys.count == 2
    assert keys.allows(KEY_A) and keys.allows(KEY_B)
    assert not keys.allows(None)
    assert not keys.allows(KEY_A[:-1])
    assert not keys.allows(KEY_A + "x")
    assert not keys.allows("# comment")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (f"Bearer {KEY_A}", KEY_A),
        (f"bearer   {KEY_A} ", KEY_A),
        (f"BEARER {KEY_A}", KEY_A),
        (f"Basic {KEY_A}", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_file_without_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiKeysError, match=r"holds no key$"):
        read_keys(write(tmp_path / "keys", "# only a comment", ""))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiKeysError, match=r"cannot read the API keys file .*missing: FileNotFoundError$"):
        read_keys(tmp_path / "missing")


def test_short_keys_are_refused_by_number_never_quoted(tmp_path: Path) -> None:
    with pytest.raises(ApiKeysError) as raised:
        read_keys(write(tmp_path / "keys", KEY_A, "short-secret", "has a space inside it"))
    message = str(raised.value)
    assert f"key(s) number 2, 3 are shorter than {MIN_KEY_LENGTH} characters or contain spaces" in message
    assert "short-secret" not in message and KEY_A not in message


def test_reload_rotates_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "keys", KEY_A)
    keys = ApiKeys(path)
    write(path, KEY_B)
    assert keys.allows(KEY_A)  # not before the reload
    assert keys.reload()
    assert keys.allows(KEY_B) and not keys.allows(KEY_A)


def test_a_broken_file_keeps_the_keys_in_force(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "keys", KEY_A)
    keys = ApiKeys(path)
    write(path, "")
    with caplog.at_level(logging.ERROR):
        assert not keys.reload()
    assert keys.allows(KEY_A)
    assert "API keys not reloaded, the previous 1 stay in force" in caplog.text
    assert KEY_A not in caplog.text
