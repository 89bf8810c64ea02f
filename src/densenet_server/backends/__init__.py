"""The forward pass: turns a preprocessed batch into logits. Knows nothing of HTTP or images.

Importing this package does not import PyTorch; load_backend() imports it only when it is needed.
"""

from __future__ import annotations

from .base import Backend
from .loading import LoadedBackend, load_backend

__all__ = ["Backend", "LoadedBackend", "load_backend"]
