"""The README's configuration table is the one the code generates (`densenet-server config`)."""

from __future__ import annotations

from support.paths import REPO

from densenet_server.config import markdown_table


def test_readme_configuration_table_is_current() -> None:
    assert markdown_table() in (REPO / "README.md").read_text(encoding="utf-8")
