"""A seeded random checkpoint of a torchvision classifier, for tests and demos: DenseNet-121 by default,
in the published file's legacy format; any other architecture, or another class count, on request.

Its predictions mean nothing. It exists because the real weights cannot be downloaded on the machines
that run the tests; correctness is shown by parity with torchvision's reference pipeline instead.

A plain random init gives near-uniform probabilities (max about 0.002), so a 1e-4 tolerance would prove
little. The classifier is therefore scaled and its bias centred on the mean logit of a few photos (still
an ordinary linear layer), which makes the probabilities peaked and different from photo to photo.

The BatchNorm statistics must leave the classifier features that depend on the photo. In deep chains of
normalised layers (EfficientNet, MobileNet, RegNet, ResNet) the signal of a fresh init shrinks layer by
layer until random running means drown it, and the output no longer depends on the input (efficientnet_b0:
the features differ between photos by 1e-9). Their statistics are therefore measured on the photos, as
training would leave them, so that every layer's activations stay normalised.

DenseNet-121 keeps random statistics (its concatenations carry every block's input on), and is the better
conditioned for it. Measured on it (issue 22, 2026-12-08, AVX2-only EPYC), with random statistics and with
statistics measured on the photos: its ONNX export differs from PyTorch by 4e-7 and 3e-6 of the logit
range, both far inside the export check; but a crop 1 level off in 0.15% of its values moves the measured
network's probabilities by 8.9e-3 where the random one's move by 8.1e-5, 12-MP JPEGs decoded at 1/8 scale
by 0.17 where they move by under 0.015, and bf16 by 0.10 where it moves by 0.04. A trained network is not
that sensitive to how an image was decoded, so the tests that bound how far an approximate path (draft
decoding, GPU decoding, bf16) may move an answer keep the random statistics: measured ones would make
those bounds a measure of the fixture's chaos, not of the path.

Usage: python tests/support/random_weights.py OUT.pth [PHOTO ...]  (DenseNet-121)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.models import get_model, get_model_weights

SEED = 20261124
# Standard deviation of the centred logits across classes: large enough for peaked probabilities.
TARGET_LOGIT_STD = 4.0
_MODERN_KEY = re.compile(r"^(.*denselayer\d+\.)(norm|relu|conv)([12])\.(weight|bias|running_mean|running_var)$")
DEFAULT_PHOTOS = sorted((Path(__file__).resolve().parents[2] / "images").glob("*.jpg"))


DENSENET121 = "densenet121"


def output_layer(model: nn.Module) -> nn.Linear:
    """The classifier head: torchvision registers it last, after every other linear layer."""
    return [layer for layer in model.modules() if isinstance(layer, nn.Linear)][-1]


def _photo_batch(photos: Sequence[Path], architecture: str) -> torch.Tensor:
    """The photos through the architecture's reference transform."""
    transform = get_model_weights(architecture).DEFAULT.transforms()
    return torch.stack([transform(Image.open(p).convert("RGB")) for p in photos])


def _randomise_batch_norm(model: nn.Module) -> None:
    """Random BatchNorm statistics, so the features are not those of a freshly initialised network."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.2)


def _measure_batch_norm(model: nn.Module, batch: torch.Tensor) -> None:
    """BatchNorm statistics of the batch's own activations: one forward pass with only the BatchNorm layers
    in training mode (dropout and stochastic depth stay off), averaging exactly that pass."""
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: after one pass, that pass's statistics
        norm.train()
    with torch.no_grad():
        model(batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


def _features(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """What the output layer receives for the batch."""
    seen: list[torch.Tensor] = []
    hook = output_layer(model).register_forward_pre_hook(lambda _layer, inputs: seen.append(inputs[0]))
    try:
        with torch.inference_mode():
            model(batch)
    finally:
        hook.remove()
    return seen[0].clone()


def make_model(
    photos: Sequence[Path] = DEFAULT_PHOTOS, seed: int = SEED, architecture: str = DENSENET121, num_classes: int = 1000
) -> nn.Module:
    torch.manual_seed(seed)
    model = get_model(architecture, weights=None, num_classes=num_classes).eval()
    batch = _photo_batch(photos, architecture)
    # DenseNet-121's checkpoint keeps its random statistics: tests measured bounds on its answers.
    if architecture == DENSENET121:
        _randomise_batch_norm(model)
    else:
        _measure_batch_norm(model, batch)
    features = _features(model, batch)
    head = output_layer(model)
    with torch.no_grad():
        weight = head.weight
        centred_logits = (features - features.mean(dim=0)) @ weight.T
        scale = TARGET_LOGIT_STD / centred_logits.std(dim=1).mean()
        weight.mul_(scale)
        head.bias.copy_(-(features.mean(dim=0) @ weight.T))
    return model


def legacy_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Keys as in the published 2017 file ("norm.1"), and no num_batches_tracked (it predates it)."""
    return {
        _MODERN_KEY.sub(r"\1\2.\3.\4", key): value.clone()
        for key, value in model.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }


def write_checkpoint(
    path: Path,
    photos: Sequence[Path] = DEFAULT_PHOTOS,
    seed: int = SEED,
    architecture: str = DENSENET121,
    num_classes: int = 1000,
) -> nn.Module:
    """Writes the model's state dict (a DenseNet's in the published legacy keys) and returns the model."""
    model = make_model(photos, seed, architecture, num_classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    legacy = architecture.startswith("densenet")
    torch.save(legacy_state_dict(model) if legacy else model.state_dict(), path)
    return model


if __name__ == "__main__":
    out = Path(sys.argv[1])
    photos = [Path(p) for p in sys.argv[2:]] or DEFAULT_PHOTOS
    write_checkpoint(out, photos)
    print(out)
