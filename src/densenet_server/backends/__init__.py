"""The forward pass: turns a preprocessed batch into logits. Knows nothing of HTTP or images.

Importing this package does not import PyTorch; load_backend() imports it only when it is needed. Nor does
it import loading.py: config and precision import the registry inside this package, and loading.py
imports them, so an eager import here would be circular.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Backend
    from .loading import LoadedBackend, load_backend

__all__ = ["Backend", "LoadedBackend", "load_backend"]

_HOMES = {"Backend": ".base", "LoadedBackend": ".loading", "load_backend": ".loading"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
