"""Build-time step of the Dockerfile: put the model's weights at /opt/model/model.pth, and the names of their
classes at /opt/model/labels.txt when there are some.

DENSENET_MODEL (the build argument) names the model. WEIGHTS_FILE (a path in the build context) is copied;
unset, torchvision's published weights of that model (model_catalog.base_record) are downloaded and checked
against the SHA-256 prefix in their file name. LABELS_FILE (a path in the build context) is copied. The
weights' full SHA-256 is written next to them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from densenet_server.model_record import DEFAULT_MODEL

TARGET = Path("/opt/model/model.pth")
LABELS_TARGET = Path("/opt/model/labels.txt")


def _copy_from_context(variable: str, target: Path) -> bool:
    """Copy the build-context file named by ``variable`` to ``target``; False (and why) if it is not one."""
    source = os.environ[variable]
    if not Path(source).is_file():
        print(f"{variable}={source} is not a file in the build context (put it under weights/)", file=sys.stderr)
        return False
    shutil.copyfile(source, target)
    return True


def _download_published(model: str) -> None:
    import torch

    from densenet_server.model_catalog import base_record

    published = base_record(model).published
    if published is None:
        raise SystemExit(f"torchvision publishes no weights for {model}: pass WEIGHTS_FILE")
    torch.hub.download_url_to_file(published.url, str(TARGET), hash_prefix=published.sha256_prefix, progress=False)


def main() -> int:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("WEIGHTS_FILE"):
        if not _copy_from_context("WEIGHTS_FILE", TARGET):
            return 1
    else:
        _download_published(os.environ.get("DENSENET_MODEL") or DEFAULT_MODEL)
    if os.environ.get("LABELS_FILE") and not _copy_from_context("LABELS_FILE", LABELS_TARGET):
        return 1
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    TARGET.with_name(TARGET.name + ".sha256").write_text(digest + "\n")
    print(f"baked weights {TARGET} sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
