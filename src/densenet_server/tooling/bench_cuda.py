"""The raw part of `densenet-server bench` on a CUDA device: every precision, from CUDA graphs and eagerly.

Each variant is the served CudaBackend itself (host copies through pinned memory included), warmed up as the
server warms it up (graphs captured for every bucket up to the largest batch measured), timed per batch size
like the CPU backends on the pixels the service makes of the benchmark's JPEGs, and its probabilities on
them, from the service on that backend as a server answers (nvJPEG decoding where it applies), are added to
the agreement table against the CPU fp32 reference. Needs torch with CUDA; imported only when the device is
CUDA.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, MutableMapping, Sequence

import numpy as np
import torch

from ..backends.cuda_backend import CudaBackend
from ..backends.loading import LoadedBackend, as_served
from ..config import Settings
from ..local_service import loaded_service, model_inputs, probabilities_of
from ..model import load_model
from ..model_catalog import base_record
from ..precision import CUDA_PRECISIONS
from .bench import RAW_INPUT_IMAGES, RawResult, measure_raw

# Powers of two, so that each is a captured bucket: a batch of 256 runs in the 256 graph, not padded.
CUDA_BATCH_SIZES = (1, 8, 32, 64, 128, 256)


def cuda_label(device: str, graphs: bool) -> str:
    return f"torch {device} {'graphs' if graphs else 'eager'}"


def measure_cuda(
    settings: Settings,
    device: str,
    web_bytes: Sequence[bytes],
    repeats: int,
    answers: MutableMapping[str, np.ndarray],
    report: Callable[[str], None],
) -> list[RawResult]:
    """RawResults per precision x (graphs, eager); adds each variant's probabilities to ``answers``."""
    model = load_model(base_record(settings.model), settings.weights, settings.weights_sha256)
    shape, classes = model.record.preprocessing.input_shape, model.record.num_classes
    results = []
    for precision in CUDA_PRECISIONS:
        served = dataclasses.replace(settings, device=device, precision=precision, max_batch_size=max(CUDA_BATCH_SIZES))
        for graphs in (True, False):
            label = cuda_label(device, graphs)
            backend = CudaBackend(model.module, device, precision, max(CUDA_BATCH_SIZES), shape, classes, use_graphs=graphs)
            # The service warms the backend up as the server does (CUDA graphs captured) before serving it.
            with loaded_service(served, as_served(served, LoadedBackend(backend, model.weights, model.record))) as service:
                report(f"raw: {label} {precision}: warm-up {backend.warm_up_seconds:.1f} s ...")
                inputs = model_inputs(service, web_bytes[:RAW_INPUT_IMAGES])
                (result,) = measure_raw(backend, inputs, repeats, CUDA_BATCH_SIZES)
                results.append(dataclasses.replace(result, backend=label))
                answers[f"{label} {precision}"] = probabilities_of(service, web_bytes)
            report(
                f"raw: {label} {precision}: best {result.best[1]:.0f} img/s at batch {result.best[0]}, "
                f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
            )
            del backend
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
    return results
