"""Resolve a client-supplied file name inside the images folder, and never outside it."""

from __future__ import annotations

import os
from pathlib import Path

MAX_NAME_BYTES = 1024


class UnsafePath(ValueError):
    """The name tries to leave the folder, or is not a plain relative path."""


class ImageNotFound(FileNotFoundError):
    """No regular file of that name inside the folder."""


def resolve_image_path(images_dir: Path, name: str) -> Path:
    """The file ``name`` (sub-folders allowed) inside ``images_dir``, or an error saying why not.

    Links are followed only while they stay inside the folder: a link that leads out is treated as
    absent, so its target's existence is never revealed.
    """
    if "\x00" in name or "\\" in name:
        raise UnsafePath("file names may not contain NUL bytes or backslashes")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UnsafePath(f"file names are limited to {MAX_NAME_BYTES} bytes")
    relative = Path(name)
    if relative.is_absolute() or name.startswith("/") or ".." in relative.parts:
        raise UnsafePath("file names must be relative to the images folder, without '..'")
    root = images_dir.resolve()
    try:
        candidate = (root / relative).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, RuntimeError) as exc:  # RuntimeError: link loop
        raise ImageNotFound(name) from exc
    except OSError as exc:  # e.g. a path component over the file system's length limit
        raise ImageNotFound(name) from exc
    if not candidate.is_relative_to(root) or not candidate.is_file() or not os.access(candidate, os.R_OK):
        raise ImageNotFound(name)
    return candidate
