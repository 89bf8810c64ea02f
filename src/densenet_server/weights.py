"""What the server knows about the weights it serves, without importing PyTorch.

The ONNX Runtime backend runs with no torch installed (the container's runtime image), so the model's
identity (published or not, file hash), its labels and the published file's name live here; model.py,
which needs torch, builds on them. tests/test_model.py checks these constants against torchvision's.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

MODEL_NAME = "densenet121"
PUBLISHED_ID = "DenseNet121_Weights.IMAGENET1K_V1"
PUBLISHED_URL = "https://download.pytorch.org/models/densenet121-a639ec97.pth"
# torchvision names its published files "<name>-<first 8 hex digits of sha256>.pth".
PUBLISHED_SHA256_PREFIX = PUBLISHED_URL.rsplit("-", 1)[1].removesuffix(".pth")

# ImageNet-1k class names in torchvision's order (DenseNet121_Weights.IMAGENET1K_V1.meta["categories"]).
CATEGORIES: list[str] = (
    resources.files(__package__).joinpath("imagenet_classes.txt").read_text(encoding="utf-8").splitlines()
)


class WeightsError(RuntimeError):
    """The weights could not be loaded: missing file, not a DenseNet-121 state dict, wrong hash."""


@dataclass(frozen=True)
class WeightsInfo:
    """What the answers and logs say about the weights in use."""

    id: str
    published: bool
    sha256: str | None

    @property
    def warning(self) -> str | None:
        if self.published:
            return None
        return (
            f"These are not torchvision's published {PUBLISHED_ID} weights "
            f"({self.id}); labels are only meaningful if this checkpoint was trained on ImageNet-1k."
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> WeightsInfo:
        sha256 = values.get("sha256")
        return cls(str(values["id"]), bool(values["published"]), str(sha256) if sha256 else None)

    def log(self) -> None:
        if self.warning:
            log.warning("weights: %s", self.warning)
        else:
            log.info("weights: %s", self.id)


PUBLISHED_WEIGHTS_INFO = WeightsInfo(PUBLISHED_ID, True, None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_published_sha256(sha256: str) -> bool:
    """Whether a file with this SHA-256 is the published checkpoint. torchvision publishes only the first
    8 hex digits (in the file name) and checks no more when it downloads; so does this. The name of a
    local file plays no part: only its content."""
    return sha256.lower().startswith(PUBLISHED_SHA256_PREFIX)


def local_weights_info(path: Path, expected_sha256: str | None = None) -> WeightsInfo:
    """The identity of a local checkpoint; WeightsError if it is missing or its hash is not the expected one."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    sha256 = file_sha256(path)
    if expected_sha256 and sha256 != expected_sha256.strip().lower():
        raise WeightsError(f"weights file {path} has sha256 {sha256}, but {expected_sha256} was expected")
    if is_published_sha256(sha256):
        return WeightsInfo(PUBLISHED_ID, True, sha256)
    return WeightsInfo(f"file {path.name} sha256:{sha256[:16]}", False, sha256)
