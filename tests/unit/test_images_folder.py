from __future__ import annotations

import os
from pathlib import Path

import pytest

from densenet_server.images_folder import ImageNotFound, UnsafePath, resolve_image_path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(b"x")
    (root / "sub" / "b c.jpg").write_bytes(b"x")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    (root / "out.jpg").symlink_to(tmp_path / "outside.jpg")
    (root / "in.jpg").symlink_to(root / "a.jpg")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    os.mkfifo(root / "fifo.jpg")
    (root / "device.jpg").symlink_to("/dev/zero")
    return root


def test_plain_and_nested_names(folder: Path) -> None:
    assert resolve_image_path(folder, "a.jpg") == (folder / "a.jpg").resolve()
    assert resolve_image_path(folder, "sub/b c.jpg") == (folder / "sub" / "b c.jpg").resolve()
    assert resolve_image_path(folder, "in.jpg") == (folder / "a.jpg").resolve()


@pytest.mark.parametrize(
    "name", ["../outside.jpg", "sub/../../outside.jpg", "..", "/etc/passwd", "a.jpg\x00", "..\\outside.jpg", "sub\\b c.jpg", "x" * 2000]
)
def test_unsafe_names(folder: Path, name: str) -> None:
    with pytest.raises(UnsafePath):
        resolve_image_path(folder, name)


@pytest.mark.parametrize(
    "name", ["missing.jpg", "out.jpg", "sub", "loop.jpg", "a.jpg/x", "y" * 300 + ".jpg", "fifo.jpg", "device.jpg", ".", "%2e%2e"]
)
def test_absent_names(folder: Path, name: str) -> None:
    with pytest.raises(ImageNotFound):
        resolve_image_path(folder, name)
