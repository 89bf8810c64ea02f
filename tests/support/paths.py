"""Where the repository's own files are, for tests in any folder."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPO_IMAGES = REPO / "images"
STATIC = REPO / "src" / "densenet_server" / "static"
SHARED = REPO.parent / "shared"
SHARED_LABELLED = SHARED / "images" / "labelled"
CAT_JPEG = REPO_IMAGES / "cat.jpg"
