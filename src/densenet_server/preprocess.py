"""RGB image -> the normalised [3, 224, 224] float32 array the model takes.

The transform is torchvision's own reference for these weights,
``DenseNet121_Weights.IMAGENET1K_V1.transforms()``: resize the short side to 256 (bilinear, antialiased),
centre-crop 224, scale to [0, 1], normalise with the ImageNet mean and standard deviation.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .model import PUBLISHED_WEIGHTS

INPUT_SHAPE = (3, 224, 224)

_reference_transform = PUBLISHED_WEIGHTS.transforms()


def preprocess(image: Image.Image) -> np.ndarray:
    return _reference_transform(image).numpy()
