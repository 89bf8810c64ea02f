"""The module a CUDA backend runs: the torchvision classifier in the compute precision, channels_last.

Both wrappers take float32 NCHW pixels and return float32 logits; the cast and layout change happen inside
forward(), so that a captured CUDA graph holds them too. Each copies the caller's module, which stays on the
CPU in fp32 (it is also the reference in tests).

Which wrapper serves a module follows from its structure (served_module), not from its name: a DenseNet (a
``.features`` module and a ``.classifier`` Linear layer; among torchvision's classifiers only DenseNets have
both) keeps its head in fp32; any other classifier runs whole in the compute precision.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ServedDenseNet(nn.Module):
    """torchvision's DenseNet forward pass: features in ``dtype`` and channels_last, the head in fp32.

    Pooling and the classifier cost nothing next to the convolutions; in fp32 they keep the logits free of
    fp16 rounding (their spacing near 16 would be 0.016).
    """

    def __init__(self, densenet: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        if not self.fits(densenet):
            raise TypeError("expected a torchvision DenseNet (a .features module and a .classifier Linear layer)")
        self.dtype = dtype
        self.features = copy.deepcopy(densenet.features).to(dtype=dtype, memory_format=torch.channels_last)
        self.classifier = copy.deepcopy(densenet.classifier).float()

    @staticmethod
    def fits(module: nn.Module) -> bool:
        """Whether ``module`` has a DenseNet's structure (forward() relies on nothing else)."""
        return isinstance(getattr(module, "features", None), nn.Module) and isinstance(
            getattr(module, "classifier", None), nn.Linear
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.features(pixels.to(dtype=self.dtype, memory_format=torch.channels_last))
        # As torchvision's DenseNet.forward from here on, in fp32.
        pooled = nn.functional.adaptive_avg_pool2d(nn.functional.relu(features.float()), (1, 1))
        return self.classifier(torch.flatten(pooled, 1))


class ServedClassifier(nn.Module):
    """Any torchvision classifier, whole, in ``dtype`` and channels_last; its logits returned in fp32.

    Their heads differ too much (Sequential with dropout, a 1x1 convolution, ViT's class token) to split off
    generically; the logits of a reduced precision differ from fp32 accordingly (docs/performance.md).
    """

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.module = copy.deepcopy(module).to(dtype=dtype, memory_format=torch.channels_last)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module(pixels.to(dtype=self.dtype, memory_format=torch.channels_last)).float()


def served_module(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The wrapper that serves ``module`` in ``dtype``: ServedDenseNet for a DenseNet, else ServedClassifier."""
    if ServedDenseNet.fits(module):
        return ServedDenseNet(module, dtype)
    return ServedClassifier(module, dtype)
