"""Choose and build the backend for the settings: which engine, which model file, which weights.

onnxruntime is the default for fp32: it is the fastest fp32 backend here (docs/performance.md) and needs
no PyTorch at run time. Its model is either a file given with --onnx-model, or an export of --weights
(or of the published weights) kept in the cache folder under the weights' hash, made and verified against
PyTorch on first use. Only that first export, the torch backend and bf16 need PyTorch.

On a CUDA device (--device, resolved by device.py) the backend is torch on that device (cuda_backend.py),
in fp16 unless another precision is asked for (precision.py); the CPU choices above do not change.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import AUTO, Settings
from ..device import CPU, DeviceError, device_kind, is_cuda, resolve_device
from ..model_catalog import base_record, served_record, with_class_count
from ..model_record import ModelRecord
from ..precision import combination_problems, effective_precision
from ..weights import (
    WeightsError,
    WeightsInfo,
    local_weights_info,
    published_weights_info,
    unpublished_weights_info,
)
from .base import FP32, Backend
from .onnx_backend import EXPORT_FORMAT, OPSET
from .registry import ONNXRUNTIME, TORCH, backend_named

if TYPE_CHECKING:
    from .onnx_backend import OnnxBackend

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class LoadedBackend:
    backend: Backend
    weights: WeightsInfo
    # The model as served: its preprocessing, categories (labels applied), outputs and name.
    record: ModelRecord


def chosen_backend(settings: Settings, device: str = CPU) -> str:
    """The backend serving on ``device`` (resolved: "cpu" or "cuda:N"): on CUDA always torch."""
    if is_cuda(device):
        return TORCH.name
    if settings.backend != AUTO:
        return settings.backend
    return (ONNXRUNTIME if effective_precision(settings.precision, CPU) == FP32 else TORCH).name


def serving_device(settings: Settings) -> str:
    """--device resolved; auto with an explicitly CPU-only backend is the CPU, without asking PyTorch."""
    # The backends that run without PyTorch run on the CPU only (precision.combination_problems): importing
    # PyTorch only to look for a GPU they cannot use would cost start-up time and memory.
    torch_free = settings.onnx_model is not None or (
        settings.backend != AUTO and not backend_named(settings.backend).needs_torch
    )
    if settings.device == AUTO and torch_free:
        return CPU
    return resolve_device(settings.device)


def torch_missing(purpose: str) -> WeightsError:
    return WeightsError(
        f"{purpose} needs PyTorch, which is not installed: install the 'torch' extra "
        "(pip install 'densenet-server[torch]'), or serve an ONNX file made by `densenet-server export` "
        "with --onnx-model"
    )


def _weights_identity(settings: Settings, record: ModelRecord) -> WeightsInfo:
    if settings.weights is None:
        return published_weights_info(record)
    return local_weights_info(settings.weights, record, settings.weights_sha256)


def cached_export_path(settings: Settings, weights: WeightsInfo, record: ModelRecord) -> Path:
    """One file per model, weights hash and exporter version, so a new checkpoint or torch never reuses a
    stale export."""
    if weights.sha256:
        key = weights.sha256[:16]
    else:
        key = f"published-{record.published.sha256_prefix if record.published else 'none'}"
    try:
        torch_version = importlib.metadata.version("torch").split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        torch_version = "none"
    name = f"{record.architecture}-{key}-torch{torch_version}-opset{OPSET}-v{EXPORT_FORMAT}.onnx"
    return settings.effective_cache_dir() / name


def _onnx_file_record(settings: Settings, backend: OnnxBackend) -> ModelRecord:
    """What an ONNX file serves: the record its export carries, else --model's with the file's class count."""
    record = backend.record or with_class_count(base_record(settings.model), backend.classes)
    if settings.model != record.architecture:
        raise WeightsError(
            f"{settings.onnx_model} is an export of {record.architecture}: serve it with --model {record.architecture}"
        )
    if backend.input_shape != record.preprocessing.input_shape or backend.classes != record.num_classes:
        raise WeightsError(
            f"{settings.onnx_model} takes {list(backend.input_shape)} pixels to {backend.classes} logits; "
            f"{record.architecture} takes {list(record.preprocessing.input_shape)} to {record.num_classes}"
        )
    return record


def _load_onnx(settings: Settings) -> LoadedBackend:
    from .onnx_backend import OnnxBackend

    threads = settings.effective_threads()
    lanes = settings.effective_parallel_passes()
    if settings.onnx_model is not None:
        backend = OnnxBackend(settings.onnx_model, threads, lanes)
        if not backend.export_info:
            log.warning("%s was not made by `densenet-server export`: its weights are unverified", settings.onnx_model)
        return LoadedBackend(backend, backend.weights, _onnx_file_record(settings, backend))
    record = base_record(settings.model)
    weights = _weights_identity(settings, record)
    path = cached_export_path(settings, weights, record)
    if path.is_file():
        try:
            backend = OnnxBackend(path, threads, lanes)
            if backend.weights.sha256 == weights.sha256 and backend.record is not None:
                log.info("using the cached ONNX export %s", path)
                return LoadedBackend(backend, weights, backend.record)
            log.warning("the cached export %s holds other weights; exporting again", path)
        except WeightsError as exc:
            log.warning("the cached export %s is unusable (%s); exporting again", path, exc)
    try:
        from ..model import load_model
        from .onnx_export import export_onnx
    except ImportError as exc:
        raise torch_missing("exporting the model to ONNX") from exc
    loaded = load_model(record, settings.weights, settings.weights_sha256)
    export_onnx(loaded.module, loaded.weights, loaded.record, path, threads)
    return LoadedBackend(OnnxBackend(path, threads, lanes), loaded.weights, loaded.record)


def _load_torch(settings: Settings, precision: str) -> LoadedBackend:
    try:
        from ..model import load_model
        from .torch_backend import TorchBackend
    except ImportError as exc:
        raise torch_missing("the torch backend") from exc
    loaded = load_model(base_record(settings.model), settings.weights, settings.weights_sha256)
    backend = TorchBackend(loaded.module, settings.effective_threads(), precision)
    return LoadedBackend(backend, loaded.weights, loaded.record)


def _load_cuda(settings: Settings, device: str, precision: str) -> LoadedBackend:
    # resolve_device() found CUDA, so torch is installed.
    from ..model import load_model
    from .cuda_backend import CudaBackend

    loaded = load_model(base_record(settings.model), settings.weights, settings.weights_sha256)
    # The settings' batch default depends on the device: ask it of the resolved one (auto may be CUDA here).
    max_batch_size = dataclasses.replace(settings, device=device).effective_max_batch_size()
    backend = CudaBackend(
        loaded.module, device, precision, max_batch_size, loaded.record.preprocessing.input_shape,
        loaded.record.num_classes,
    )
    return LoadedBackend(backend, loaded.weights, loaded.record)


def as_served(settings: Settings, loaded: LoadedBackend) -> LoadedBackend:
    """The loaded model under its served name, labels and outputs; its weights' warning says what they are."""
    record = served_record(
        loaded.record,
        name=settings.served_name(),
        labels=settings.labels,
        multi_label=settings.multi_label,
        threshold=settings.threshold,
    )
    weights = loaded.weights
    if not weights.published:
        weights = unpublished_weights_info(record, weights.id, weights.sha256)
    return LoadedBackend(loaded.backend, weights, record)


def load_backend(settings: Settings, device: str | None = None) -> LoadedBackend:
    """The backend the settings ask for, ready to predict; logs what it serves and how.

    ``device``: already resolved (serving_device); None resolves --device here. A CUDA backend predicts at
    once, but eagerly: its CUDA graphs are captured by its warm_up(), which the caller runs before serving.
    """
    device = serving_device(settings) if device is None else device
    precision = effective_precision(settings.precision, device_kind(device), settings.model)
    name = chosen_backend(settings, device)
    if name == ONNXRUNTIME.name and precision != FP32:
        raise WeightsError(f"the onnxruntime backend runs in fp32 only; use --backend torch for {precision}")
    problems = combination_problems(device_kind(device), settings.backend, precision, settings.onnx_model is not None)
    if problems:
        raise DeviceError(f"--device {settings.device} resolved to {device}: " + "; ".join(problems))
    if is_cuda(device):
        loaded = _load_cuda(settings, device, precision)
    else:
        loaded = _load_onnx(settings) if name == ONNXRUNTIME.name else _load_torch(settings, precision)
    loaded = as_served(settings, loaded)
    loaded.weights.log()
    if loaded.backend.precision != FP32:
        log.warning(
            "reduced precision %s is on: probabilities differ from fp32 (see docs/performance.md)",
            loaded.backend.precision,
        )
    log.info(
        "model %s (%s, %d classes, %s): backend %s (%s) on %s, %d threads, %d parallel forward passes",
        loaded.record.name, loaded.record.architecture, loaded.record.num_classes, loaded.record.output,
        loaded.backend.name, loaded.backend.precision, loaded.backend.device, settings.effective_threads(),
        max(1, len(loaded.backend.lane_predicts)),
    )
    return loaded
