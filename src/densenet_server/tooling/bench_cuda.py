"""The raw part of `densenet-server bench` on a CUDA device: every precision, from CUDA graphs and eagerly.

Each variant is the served CudaBackend itself (host copies through pinned memory included), warmed up as the
server warms it up (graphs captured for every bucket up to the largest batch measured), timed per batch size
like the CPU backends, and its probabilities on the benchmark's JPEGs are added to the agreement table
against the CPU fp32 reference. Needs torch with CUDA; imported only when the device is CUDA.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, MutableMapping, Sequence

import numpy as np
import torch

from ..backends.cuda_backend import CudaBackend
from ..backends.loading import LoadedBackend
from ..classifier import Classifier
from ..config import Settings
from ..model import load_model
from ..precision import CUDA_PRECISIONS
from . import agreement
from .bench import RawResult, measure_raw

# Powers of two, so that each is a captured bucket: a batch of 256 runs in the 256 graph, not padded.
CUDA_BATCH_SIZES = (1, 8, 32, 64, 128, 256)


def cuda_label(device: str, graphs: bool) -> str:
    return f"torch {device} {'graphs' if graphs else 'eager'}"


def measure_cuda(
    settings: Settings,
    device: str,
    inputs: np.ndarray,
    web_bytes: Sequence[bytes],
    repeats: int,
    answers: MutableMapping[str, np.ndarray],
    report: Callable[[str], None],
) -> list[RawResult]:
    """RawResults per precision x (graphs, eager); adds each variant's probabilities to ``answers``."""
    model = load_model(settings.weights, settings.weights_sha256)
    results = []
    for precision in CUDA_PRECISIONS:
        for graphs in (True, False):
            label = cuda_label(device, graphs)
            backend = CudaBackend(model.module, device, precision, max(CUDA_BATCH_SIZES), use_graphs=graphs)
            report(f"raw: {label} {precision}: warm-up {backend.warm_up():.1f} s ...")
            (result,) = measure_raw(backend, inputs, repeats, CUDA_BATCH_SIZES)
            results.append(dataclasses.replace(result, backend=label))
            classifier = Classifier(LoadedBackend(backend, model.weights), settings.max_image_pixels)
            answers[f"{label} {precision}"] = agreement.probabilities(classifier, web_bytes)
            report(
                f"raw: {label} {precision}: best {result.best[1]:.0f} img/s at batch {result.best[0]}, "
                f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
            )
            del backend, classifier
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
    return results
