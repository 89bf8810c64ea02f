"""Export the torchvision model to ONNX, and prove the export computes what PyTorch computes (needs torch).

An export is accepted only if, on a fixed verification batch, ONNX Runtime's logits meet the rule of
export_verdict.py (PyTorch's ranking, and its probabilities within 1e-4 or its logits within 1e-3 of their
range); the measured differences are stored in the file's metadata along with the weights' identity and the
versions that made it. A refusal names the image and the figures.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..model_record import ModelRecord
from ..weights import WeightsInfo
from .export_verdict import LOGIT_TOLERANCE, PROBABILITY_TOLERANCE, ExportVerdict, judge_export
from .onnx_backend import EXPORT_FORMAT, META_EXPORT, META_RECORD, META_WEIGHTS, OPSET, OnnxBackend

log = logging.getLogger(__name__)

_VERIFY_SEED = 20261125


class ExportError(RuntimeError):
    """The export failed, or does not compute what PyTorch computes."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_probability_diff: float
    max_logit_diff: float
    max_relative_logit_diff: float
    seconds: float


# What each image of the verification batch is, as a refusal names it.
VERIFICATION_IMAGES = ("all zeros: the mean colour", "seeded noise 1", "seeded noise 2", "seeded noise 3")


def verification_batch(input_shape: tuple[int, int, int]) -> np.ndarray:
    """Fixed inputs in the range of normalised photos: an all-zero image and seeded noise images."""
    noise_shape = (len(VERIFICATION_IMAGES) - 1, *input_shape)
    noise = np.random.default_rng(_VERIFY_SEED).normal(0.0, 1.0, noise_shape).astype(np.float32)
    return np.concatenate([np.zeros((1, *input_shape), np.float32), noise])


def _write_onnx(module: nn.Module, example_batch: np.ndarray, target: Path) -> None:
    example = torch.from_numpy(example_batch[:2])
    # The TorchScript-based exporter: ~1 s for this model, where the dynamo exporter takes ~10 s, and
    # its graph runs as fast in ONNX Runtime (docs/performance.md). torch is pinned, so its deprecation
    # warning is not the user's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(target),
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _add_metadata(path: Path, weights: WeightsInfo, record: ModelRecord, report: dict[str, object]) -> None:
    model = onnx.load(str(path))
    onnx.helper.set_model_props(
        model,
        {
            META_WEIGHTS: json.dumps(weights.to_dict()),
            META_RECORD: json.dumps(record.to_dict()),
            META_EXPORT: json.dumps(report),
        },
    )
    onnx.save(model, str(path))


def export_onnx(
    module: nn.Module, weights: WeightsInfo, record: ModelRecord, target: Path, threads: int = 1
) -> ExportReport:
    """Export ``module`` (the model ``record`` describes) to ``target`` (atomically: the file appears only
    once verified)."""
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        module = module.eval()
        batch = verification_batch(record.preprocessing.input_shape)
        _write_onnx(module, batch, temporary)
        with torch.inference_mode():
            expected = module(torch.from_numpy(batch)).numpy()
        actual = OnnxBackend(temporary, threads).predict(batch)
        verdict = _verdict(expected, actual, record)
        report: dict[str, object] = {
            "format": EXPORT_FORMAT,
            "opset": OPSET,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "verified_max_probability_diff": verdict.max_probability_diff,
            "verified_max_logit_diff": verdict.max_logit_diff,
            "verified_max_relative_logit_diff": verdict.max_relative_logit_diff,
        }
        _add_metadata(temporary, weights, record, report)
        # mkstemp makes the file private; a model is read by whichever user serves it (the image's non-root uid).
        temporary.chmod(0o644)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    log.info(
        "exported the model to %s in %.1f s; verified against PyTorch: max probability difference %.2e, "
        "max logit difference %.2e of the logit range",
        target, seconds, verdict.max_probability_diff, verdict.max_relative_logit_diff,
    )
    return ExportReport(
        target, verdict.max_probability_diff, verdict.max_logit_diff, verdict.max_relative_logit_diff, seconds
    )


def _verdict(expected: np.ndarray, actual: np.ndarray, record: ModelRecord) -> ExportVerdict:
    """The export's verdict, or ExportError naming the worst image and its figures."""
    if actual.shape != expected.shape:
        raise ExportError(
            f"the ONNX export gives logits of shape {list(actual.shape)} where PyTorch gives "
            f"{list(expected.shape)}; refusing to use it"
        )
    verdict = judge_export(expected, actual, record)
    failure = verdict.worst_failure()
    if failure is not None:
        number, image = failure
        raise ExportError(
            f"the ONNX export differs from PyTorch on verification image {number + 1} of {len(verdict.images)} "
            f"({VERIFICATION_IMAGES[number]}): {image.describe()}; an export must keep PyTorch's ranking and "
            f"its probabilities within {PROBABILITY_TOLERANCE:g} or its logits within {LOGIT_TOLERANCE:g} of "
            "their range; refusing to use it"
        )
    return verdict
