"""Every backend, named once, with what config, loading, the v2 metadata, the OpenAPI document and bench
need to know of it.

Imports nothing, neither PyTorch nor onnxruntime nor the rest of the package: config and precision check
--backend against it before any backend is installed or loaded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendSpec:
    # --backend's value, and the "backend" every answer, /v2 parameter and log line reports.
    name: str
    # What /v2/models/<model> reports as "platform": Triton's name for the runtime, so that clients written
    # for Triton recognise it.
    platform: str
    description: str
    # Serving with it needs PyTorch installed; onnxruntime needs it only to make its export once.
    needs_torch: bool


ONNXRUNTIME = BackendSpec(
    "onnxruntime", "onnxruntime_onnx", "an ONNX export of the model, verified against PyTorch", needs_torch=False
)
TORCH = BackendSpec("torch", "pytorch_libtorch", "the reference, PyTorch eager (on CUDA too)", needs_torch=True)

BACKENDS = (ONNXRUNTIME, TORCH)
NAMES = tuple(backend.name for backend in BACKENDS)


def backend_named(name: str) -> BackendSpec:
    """The backend called ``name``; KeyError for any other name (``auto`` included: it is no backend)."""
    for backend in BACKENDS:
        if backend.name == name:
            return backend
    raise KeyError(f"unknown backend {name!r}; one of {', '.join(NAMES)}")
