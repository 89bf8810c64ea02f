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

DENSENET121 = "densenet121"


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
    logits = reference_logits(model, photos, batch_size, architecture)
    probabilities = logits.sigmoid() if multi_label else logits.softmax(dim=1)
    return probabilities.double().numpy()
