"""The independent reference: torchvision's model and transforms, as its documentation uses them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models import DenseNet121_Weights


def reference_probabilities(model: nn.Module, photos: Sequence[Path], batch_size: int = 16) -> np.ndarray:
    transform = DenseNet121_Weights.IMAGENET1K_V1.transforms()
    rows = []
    for start in range(0, len(photos), batch_size):
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in photos[start : start + batch_size]])
        with torch.inference_mode():
            rows.append(model.eval()(batch).softmax(dim=1).double().numpy())
    return np.concatenate(rows)
