"""The reference backend: the torchvision module itself, run by PyTorch on the CPU."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from .base import BF16, FP32
from .registry import TORCH

PRECISIONS = (FP32, BF16)


class TorchBackend:
    name = TORCH.name
    device = "cpu"
    # PyTorch's intra-op thread count is global to the process, so passes cannot get a share each.
    lane_predicts = ()

    def __init__(self, module: nn.Module, threads: int, precision: str = FP32, channels_last: bool = True) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"the torch backend runs in {' or '.join(PRECISIONS)}, not {precision}")
        torch.set_num_threads(threads)
        self.precision = precision
        # channels_last lets oneDNN pick its fastest convolution kernels on x86; the results agree with
        # the default layout to float32 rounding.
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._module = module.to(memory_format=self._memory_format).eval()

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == BF16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def predict(self, batch: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with self._autocast():
            logits = self._module(inputs.contiguous(memory_format=self._memory_format))
        return logits.float().numpy()
