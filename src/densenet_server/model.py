"""Build torchvision's DenseNet-121 and load its weights: the published ones, or a local file."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import DenseNet121_Weights, densenet121

log = logging.getLogger(__name__)

MODEL_NAME = "densenet121"
PUBLISHED_WEIGHTS = DenseNet121_Weights.IMAGENET1K_V1
CATEGORIES: list[str] = list(PUBLISHED_WEIGHTS.meta["categories"])

# torchvision names its published files "<name>-<first 8 hex digits of sha256>.pth".
PUBLISHED_SHA256_PREFIX = re.search(r"-([0-9a-f]{8,})\.pth$", PUBLISHED_WEIGHTS.url).group(1)  # type: ignore[union-attr]

# The published checkpoint predates PyTorch's ban on dots in module names: it says
# "denselayer1.norm.1.weight" where the model has "denselayer1.norm1.weight". torchvision remaps the
# same way when it loads the file itself.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
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
            "These are not torchvision's published DenseNet121_Weights.IMAGENET1K_V1 weights "
            f"({self.id}); labels are only meaningful if this checkpoint was trained on ImageNet-1k."
        )


@dataclass
class LoadedModel:
    module: nn.Module
    categories: list[str]
    weights: WeightsInfo


def remap_legacy_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    remapped = {}
    for key, value in state_dict.items():
        match = _LEGACY_KEY.match(key)
        remapped[match.group(1) + match.group(2) if match else key] = value
    return remapped


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return dict(loaded)


def load_local_weights(path: Path, expected_sha256: str | None = None) -> LoadedModel:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    sha256 = file_sha256(path)
    if expected_sha256 and sha256 != expected_sha256.strip().lower():
        raise WeightsError(
            f"weights file {path} has sha256 {sha256}, but {expected_sha256} was expected"
        )
    module = densenet121(weights=None)
    try:
        module.load_state_dict(remap_legacy_keys(_read_state_dict(path)), strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} is not a DenseNet-121 state dict: {exc}") from exc
    published = sha256.startswith(PUBLISHED_SHA256_PREFIX)
    weights_id = (
        PUBLISHED_WEIGHTS.__class__.__name__ + "." + PUBLISHED_WEIGHTS.name
        if published
        else f"file {path.name} sha256:{sha256[:16]}"
    )
    return LoadedModel(_for_inference(module), CATEGORIES, WeightsInfo(weights_id, published, sha256))


def load_published_weights() -> LoadedModel:
    """torchvision's own way: download once into the torch hub cache, check the hash, remap keys."""
    module = densenet121(weights=PUBLISHED_WEIGHTS, progress=False)
    weights_id = PUBLISHED_WEIGHTS.__class__.__name__ + "." + PUBLISHED_WEIGHTS.name
    return LoadedModel(_for_inference(module), CATEGORIES, WeightsInfo(weights_id, True, None))


def load_model(weights_path: Path | None, expected_sha256: str | None = None) -> LoadedModel:
    loaded = (
        load_local_weights(weights_path, expected_sha256)
        if weights_path is not None
        else load_published_weights()
    )
    if loaded.weights.warning:
        log.warning("weights: %s", loaded.weights.warning)
    else:
        log.info("weights: %s", loaded.weights.id)
    return loaded


def _for_inference(module: nn.Module) -> nn.Module:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module
