"""Marks for tests that need a CUDA device: collected everywhere, skipped cleanly without one."""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
# Every test module of tests/gpu: `pytestmark = GPU`.
GPU = [
    pytest.mark.gpu,
    pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device: run scripts/test-gpu.sh on a machine with one"),
]
