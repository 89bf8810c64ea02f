"""A seeded random DenseNet-121 checkpoint in the published file's legacy format, for tests and demos.

Its predictions mean nothing. It exists because the real weights cannot be downloaded on the machines
that run the tests; correctness is shown by parity with torchvision's reference pipeline instead.

A plain random init gives near-uniform probabilities (max about 0.002), so a 1e-4 tolerance would prove
little. The classifier is therefore scaled and its bias centred on the mean logit of a few photos (still
an ordinary linear layer), which makes the probabilities peaked and different from photo to photo.

Usage: python tests/support/random_weights.py OUT.pth [PHOTO ...]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.models import DenseNet121_Weights, densenet121

SEED = 20261124
# Standard deviation of the centred logits across classes: large enough for peaked probabilities.
TARGET_LOGIT_STD = 4.0
_MODERN_KEY = re.compile(r"^(.*denselayer\d+\.)(norm|relu|conv)([12])\.(weight|bias|running_mean|running_var)$")
DEFAULT_PHOTOS = sorted((Path(__file__).resolve().parents[2] / "images").glob("*.jpg"))


def _features(model: nn.Module, photos: Sequence[Path]) -> torch.Tensor:
    transform = DenseNet121_Weights.IMAGENET1K_V1.transforms()
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in photos])
    with torch.inference_mode():
        maps = torch.relu(model.features(batch))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(maps, 1), 1)


def make_model(photos: Sequence[Path] = DEFAULT_PHOTOS, seed: int = SEED) -> nn.Module:
    torch.manual_seed(seed)
    model = densenet121(weights=None).eval()
    # Random BatchNorm statistics, so the features are not those of a freshly initialised network.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.2)
    features = _features(model, photos)
    with torch.no_grad():
        weight = model.classifier.weight
        centred_logits = (features - features.mean(dim=0)) @ weight.T
        scale = TARGET_LOGIT_STD / centred_logits.std(dim=1).mean()
        weight.mul_(scale)
        model.classifier.bias.copy_(-(features.mean(dim=0) @ weight.T))
    return model


def legacy_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Keys as in the published 2017 file ("norm.1"), and no num_batches_tracked (it predates it)."""
    return {
        _MODERN_KEY.sub(r"\1\2.\3.\4", key): value.clone()
        for key, value in model.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }


def write_checkpoint(path: Path, photos: Sequence[Path] = DEFAULT_PHOTOS, seed: int = SEED) -> nn.Module:
    model = make_model(photos, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(legacy_state_dict(model), path)
    return model


if __name__ == "__main__":
    out = Path(sys.argv[1])
    photos = [Path(p) for p in sys.argv[2:]] or DEFAULT_PHOTOS
    write_checkpoint(out, photos)
    print(out)
