"""The reference backend: the torchvision module itself, run by PyTorch on the CPU."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TorchBackend:
    name = "torch"

    def __init__(self, module: nn.Module, threads: int, channels_last: bool = True) -> None:
        torch.set_num_threads(threads)
        # channels_last lets oneDNN pick its fastest convolution kernels on x86; the results agree with
        # the default layout to float32 rounding.
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._module = module.to(memory_format=self._memory_format).eval()

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        logits = self._module(inputs.contiguous(memory_format=self._memory_format))
        return logits.numpy()
