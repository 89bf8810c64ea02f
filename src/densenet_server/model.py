"""Build torchvision's DenseNet-121 and load its weights: the published ones, or a local file (needs torch)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import DenseNet121_Weights, densenet121

from .weights import (
    CATEGORIES,
    PUBLISHED_WEIGHTS_INFO,
    WeightsError,
    WeightsInfo,
    local_weights_info,
)

__all__ = ["LoadedModel", "WeightsError", "load_model", "load_local_weights", "remap_legacy_keys"]

PUBLISHED_WEIGHTS = DenseNet121_Weights.IMAGENET1K_V1

# The published checkpoint predates PyTorch's ban on dots in module names: it says
# "denselayer1.norm.1.weight" where the model has "denselayer1.norm1.weight". torchvision remaps the
# same way when it loads the file itself.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
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
    info = local_weights_info(path, expected_sha256)
    module = densenet121(weights=None)
    try:
        module.load_state_dict(remap_legacy_keys(_read_state_dict(path)), strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} is not a DenseNet-121 state dict: {exc}") from exc
    return LoadedModel(_for_inference(module), CATEGORIES, info)


def load_published_weights() -> LoadedModel:
    """torchvision's own way: download once into the torch hub cache, check the hash, remap keys."""
    try:
        module = densenet121(weights=PUBLISHED_WEIGHTS, progress=False)
    except OSError as exc:  # no network, DNS, proxy, HTTP error (URLError is an OSError), unwritable cache
        raise _download_failed(exc) from exc
    return LoadedModel(_for_inference(module), CATEGORIES, PUBLISHED_WEIGHTS_INFO)


def _download_failed(exc: OSError) -> WeightsError:
    """Say what failed and how to start without the network: urllib's own words name neither the file
    nor the way around it (a first start on an offline machine ends with only "Name or service not known")."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return WeightsError(
        f"the published weights ({PUBLISHED_WEIGHTS_INFO.id}) could not be downloaded from "
        f"{PUBLISHED_WEIGHTS.url} into {cache}: {exc}. Without internet access, use a local copy of that "
        "file: pass it with --weights FILE (or DENSENET_WEIGHTS=FILE), or put it in that folder (set "
        "TORCH_HOME to move the folder); or serve an ONNX file made by `densenet-server export` with "
        "--onnx-model FILE (or DENSENET_ONNX_MODEL=FILE)"
    )


def load_model(weights_path: Path | None, expected_sha256: str | None = None) -> LoadedModel:
    if weights_path is not None:
        return load_local_weights(weights_path, expected_sha256)
    return load_published_weights()


def _for_inference(module: nn.Module) -> nn.Module:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module
