"""The independent reference: torchvision's model and transforms, as its documentation uses them.

For any architecture: the preprocessing is ``weights.transforms()`` of that architecture's DEFAULT weights
(what torchvision's documentation applies before the model), then the module in fp32, then a softmax (or,
for a multi-label model, a sigmoid per class).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models import get_model_weights
from torchvision.transforms._presets import ImageClassification

from support.paths import REPO_IMAGES, SHARED_LABELLED

DENSENET121 = "densenet121"


def parity_photos(labelled: int = 4) -> list[Path]:
    """The repository's four example photos, and the first ``labelled`` of ../shared's when it has them."""
    return sorted(REPO_IMAGES.glob("*.jpg")) + sorted(SHARED_LABELLED.glob("*.png"))[:labelled]


def reference_transform(architecture: str = DENSENET121) -> ImageClassification:
    return get_model_weights(architecture).DEFAULT.transforms()


def reference_logits(
    model: nn.Module, photos: Sequence[Path], batch_size: int = 16, architecture: str = DENSENET121
) -> torch.Tensor:
    transform = reference_transform(architecture)
    rows = []
    for start in range(0, len(photos), batch_size):
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in photos[start : start + batch_size]])
        with torch.inference_mode():
            rows.append(model.eval()(batch))
    return torch.cat(rows)


def reference_probabilities(
    model: nn.Module,
    photos: Sequence[Path],
    batch_size: int = 16,
    architecture: str = DENSENET121,
    multi_label: bool = False,
) -> np.ndarray:
    return output_probabilities(reference_logits(model, photos, batch_size, architecture), multi_label)


def output_probabilities(logits: torch.Tensor, multi_label: bool = False) -> np.ndarray:
    """A softmax over the classes, or (multi-label) each class's sigmoid."""
    probabilities = logits.sigmoid() if multi_label else logits.softmax(dim=1)
    return probabilities.double().numpy()
