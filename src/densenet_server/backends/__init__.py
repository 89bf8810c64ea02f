"""The forward pass: turns a preprocessed batch into logits. Knows nothing of HTTP or images."""

from __future__ import annotations

from .base import Backend
from .torch_backend import TorchBackend

__all__ = ["Backend", "TorchBackend"]
