"""Build a torchvision classifier and load its weights: the published ones, or a local file (needs torch).

A local checkpoint may have its own number of classes (a fine-tuned model): the count is read from the
shape of the model's last layer in the checkpoint, and the model is built with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import get_model, get_weight

from .model_catalog import with_class_count
from .model_record import DENSENET121, ModelRecord
from .weights import (
    WeightsError,
    WeightsInfo,
    local_weights_info,
    published_weights_info,
    unpublished_weights_info,
)

__all__ = ["LoadedModel", "WeightsError", "load_model", "load_local_weights", "remap_legacy_keys"]

# The published DenseNet checkpoints predate PyTorch's ban on dots in module names: they say
# "denselayer1.norm.1.weight" where the model has "denselayer1.norm1.weight". torchvision remaps the
# same way when it loads the file itself.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
# torchvision builds these two differently when it loads their published weights: no auxiliary heads, and
# the input re-normalised inside the model (their original weights expect another normalisation). A
# fine-tuned checkpoint of them is built the same way, so that it computes what it was trained to.
_AS_PUBLISHED: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": False},
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": False},
}
_AUXILIARY_KEYS = re.compile(r"^(aux1|aux2|AuxLogits)\.")


@dataclass
class LoadedModel:
    module: nn.Module
    # The model's record, with the checkpoint's class count (see model_catalog.with_class_count).
    record: ModelRecord
    weights: WeightsInfo

    @property
    def categories(self) -> tuple[str, ...]:
        return self.record.categories


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


def _build(architecture: str, **options: Any) -> nn.Module:
    return get_model(architecture, weights=None, **_AS_PUBLISHED.get(architecture, {}), **options)


def output_layer_name(module: nn.Module) -> str:
    """The layer whose outputs are the logits: torchvision registers its classifier head last (a Linear
    layer; SqueezeNet's is a 1x1 convolution)."""
    names = [name for name, layer in module.named_modules() if isinstance(layer, (nn.Linear, nn.Conv2d))]
    if not names:
        raise WeightsError(f"{type(module).__name__} has no linear or convolution layer")
    return names[-1]


def checkpoint_classes(state_dict: Mapping[str, torch.Tensor], architecture: str, path: Path) -> int:
    """How many classes the checkpoint's output layer has."""
    try:
        with torch.device("meta"):  # only the layers' names are needed: allocate nothing
            module = _build(architecture)
    except NotImplementedError:
        # RegNet's builders read back tensors they compute (their widths), which meta tensors cannot give.
        module = _build(architecture)
    key = output_layer_name(module) + ".weight"
    if key not in state_dict:
        raise WeightsError(f"{path} is not a {architecture} state dict: it has no {key}")
    return int(state_dict[key].shape[0])


def load_local_weights(
    path: Path, record: ModelRecord = DENSENET121, expected_sha256: str | None = None
) -> LoadedModel:
    path = Path(path)
    info = local_weights_info(path, record, expected_sha256)
    state_dict = _read_state_dict(path)
    if record.key_remap == "densenet":
        state_dict = remap_legacy_keys(state_dict)
    if record.architecture in _AS_PUBLISHED:
        state_dict = {key: value for key, value in state_dict.items() if not _AUXILIARY_KEYS.match(key)}
    classes = checkpoint_classes(state_dict, record.architecture, path)
    module = _build(record.architecture, num_classes=classes)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path} is not a {record.architecture} state dict: {exc}") from exc
    counted = with_class_count(record, classes)
    if not info.published:
        # Classes of its own: the warning speaks of them, not of ImageNet's (an export stores it).
        info = unpublished_weights_info(counted, info.id, info.sha256)
    return LoadedModel(_for_inference(module), counted, info)


def load_published_weights(record: ModelRecord = DENSENET121) -> LoadedModel:
    """torchvision's own way: download once into the torch hub cache, check the hash, remap keys."""
    info = published_weights_info(record)
    assert record.published is not None  # published_weights_info refused otherwise
    try:
        module = get_model(record.architecture, weights=get_weight(record.published.id), progress=False)
    except OSError as exc:  # no network, DNS, proxy, HTTP error (URLError is an OSError), unwritable cache
        raise _download_failed(record, exc) from exc
    return LoadedModel(_for_inference(module), record, info)


def _download_failed(record: ModelRecord, exc: OSError) -> WeightsError:
    """Say what failed and how to start without the network: urllib's own words name neither the file
    nor the way around it (a first start on an offline machine ends with only "Name or service not known")."""
    assert record.published is not None
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return WeightsError(
        f"the published weights ({record.published.id}) could not be downloaded from "
        f"{record.published.url} into {cache}: {exc}. Without internet access, use a local copy of that "
        "file: pass it with --weights FILE (or DENSENET_WEIGHTS=FILE), or put it in that folder (set "
        "TORCH_HOME to move the folder); or serve an ONNX file made by `densenet-server export` with "
        "--onnx-model FILE (or DENSENET_ONNX_MODEL=FILE)"
    )


def load_model(
    record: ModelRecord, weights_path: Path | None, expected_sha256: str | None = None
) -> LoadedModel:
    if weights_path is not None:
        return load_local_weights(weights_path, record, expected_sha256)
    return load_published_weights(record)


def _for_inference(module: nn.Module) -> nn.Module:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module
