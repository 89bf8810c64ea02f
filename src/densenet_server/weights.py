"""What the server knows about the weights it serves, without importing PyTorch.

The ONNX Runtime backend runs with no torch installed (the container's runtime image), so the weights'
identity (published or not, file hash) is worked out here, against the model's record; model.py, which
needs torch, builds on it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from .model_record import ModelRecord

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """The weights could not be loaded: missing file, not a state dict of the model, wrong hash."""


@dataclass(frozen=True)
class WeightsInfo:
    """What the answers and logs say about the weights in use."""

    id: str
    published: bool
    sha256: str | None
    # Said in every answer and logged at start-up when the weights are not the published ones.
    warning: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> WeightsInfo:
        sha256, warning = values.get("sha256"), values.get("warning")
        return cls(str(values["id"]), bool(values["published"]), str(sha256) if sha256 else None, str(warning) if warning else None)

    def log(self) -> None:
        if self.warning:
            log.warning("weights: %s", self.warning)
        else:
            log.info("weights: %s", self.id)


def published_weights_info(record: ModelRecord, sha256: str | None = None) -> WeightsInfo:
    if record.published is None:
        raise WeightsError(f"torchvision publishes no weights for {record.architecture}: pass --weights FILE")
    return WeightsInfo(record.published.id, True, sha256)


def unpublished_warning(record: ModelRecord, weights_id: str) -> str:
    published = f"torchvision's published {record.published.id}" if record.published else "published"
    warning = f"These are not {published} weights ({weights_id})"
    if record.published_categories:
        return warning + "; labels are only meaningful if this checkpoint was trained on ImageNet-1k."
    return warning + "; answers are only as good as this checkpoint."


def unpublished_weights_info(record: ModelRecord, weights_id: str, sha256: str | None) -> WeightsInfo:
    return WeightsInfo(weights_id, False, sha256, unpublished_warning(record, weights_id))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_published_sha256(sha256: str, record: ModelRecord) -> bool:
    """Whether a file with this SHA-256 is ``record``'s published checkpoint. torchvision publishes only the
    first 8 hex digits (in the file name) and checks no more when it downloads; so does this. The name of a
    local file plays no part: only its content."""
    return record.published is not None and sha256.lower().startswith(record.published.sha256_prefix)


def local_weights_info(path: Path, record: ModelRecord, expected_sha256: str | None = None) -> WeightsInfo:
    """The identity of a local checkpoint; WeightsError if it is missing or its hash is not the expected one."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    sha256 = file_sha256(path)
    if expected_sha256 and sha256 != expected_sha256.strip().lower():
        raise WeightsError(f"weights file {path} has sha256 {sha256}, but {expected_sha256} was expected")
    if is_published_sha256(sha256, record):
        return published_weights_info(record, sha256)
    return unpublished_weights_info(record, f"file {path.name} sha256:{sha256[:16]}", sha256)
