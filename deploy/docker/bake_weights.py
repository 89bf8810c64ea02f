"""Build-time step of the Dockerfile: put the model's weights at /opt/model/densenet121.pth.

WEIGHTS_FILE (a path in the build context) is copied; unset, torchvision's published IMAGENET1K_V1 file is
downloaded and checked against the SHA-256 prefix in its name. The full SHA-256 is written next to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

TARGET = Path("/opt/model/densenet121.pth")


def main() -> int:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    local = os.environ.get("WEIGHTS_FILE", "")
    if local:
        if not Path(local).is_file():
            print(f"WEIGHTS_FILE={local} is not a file in the build context (put it under weights/)", file=sys.stderr)
            return 1
        shutil.copyfile(local, TARGET)
    else:
        import torch
        from torchvision.models import DenseNet121_Weights

        url = DenseNet121_Weights.IMAGENET1K_V1.url
        hash_prefix = url.rsplit("-", 1)[1].split(".")[0]  # torchvision names files <name>-<sha256 prefix>.pth
        torch.hub.download_url_to_file(url, str(TARGET), hash_prefix=hash_prefix, progress=False)
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    TARGET.with_name(TARGET.name + ".sha256").write_text(digest + "\n")
    print(f"baked weights {TARGET} sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
