"""Numeric precisions: which backend and device run which, and the default on each device.

CPU rules are today's: onnxruntime runs fp32 only; the torch backend fp32, or bf16 opted into. On CUDA
the torch backend runs fp32, tf32 (fp32 tensors, TF32 tensor-core maths), fp16 or bf16.

The default (``auto``) is fp32 on the CPU and fp16 on CUDA. fp16 is the CUDA default because of the
agreement measured in issue 9 (one H100, 200 photos, random DenseNet-121 weights, against fp32): max
probability difference 2.5e-5 and the same top-1 on 100% of the photos, within this project's rule for a
default precision (within 1e-3 and the same top-1); it is also the fastest there (8,745 img/s eager against
5,253 for TF32 and 2,775 for fp32). bf16 (2.4e-4, but top-1 changed on 2.5% of the photos) fails the rule and stays opt-in.
tests/gpu checks the rule again against the CPU fp32 reference on whichever card runs them.

That measurement holds for DenseNets only, whose classifier head stays in fp32 (backends/cuda_modules.py).
Any other model runs whole in the chosen precision, and a CPU fp16 run of a random 14-class ResNet-18 on
48 photos moved probabilities by up to 7.8e-3 (top-1 changed on 1 of 48): outside the rule. So ``auto`` on
CUDA is fp16 for DenseNets and fp32 for every other architecture; fp16, bf16 and tf32 stay opt-in there.
"""

from __future__ import annotations

from .backends.registry import ONNXRUNTIME

AUTO = "auto"
FP32 = "fp32"
TF32 = "tf32"
FP16 = "fp16"
BF16 = "bf16"

PRECISIONS = (AUTO, FP32, TF32, FP16, BF16)
CUDA_PRECISIONS = (FP32, TF32, FP16, BF16)
# TF32 is an NVIDIA tensor-core format, and fp16 convolutions on a CPU are slower than fp32 ones.
CUDA_ONLY = (TF32, FP16)
CUDA_DEFAULT = FP16

# Names as in device.device_kind(); repeated so that config can import this module.
_CPU = "cpu"
_CUDA = "cuda"


# The architectures whose reduced-precision agreement was measured within the rule (see above).
_FP16_MEASURED = ("densenet121", "densenet161", "densenet169", "densenet201")


def effective_precision(precision: str, device_kind: str, architecture: str = _FP16_MEASURED[0]) -> str:
    """The precision served: ``precision`` unless it is auto, then the default for the device and model."""
    if precision != AUTO:
        return precision
    if device_kind == _CUDA and architecture in _FP16_MEASURED:
        return CUDA_DEFAULT
    return FP32


def combination_problems(device_kind: str, backend: str, precision: str, onnx_model: bool) -> list[str]:
    """What is wrong with serving on ``device_kind`` ("auto", "cpu" or "cuda": auto checks only what holds on
    either device) with ``backend`` (auto, onnxruntime, torch) in ``precision``; empty if nothing."""
    problems = []
    onnxruntime = backend == ONNXRUNTIME.name or onnx_model
    if device_kind == _CUDA and onnxruntime:
        problems.append(
            "onnxruntime (--backend onnxruntime, --onnx-model) runs on the CPU only; on CUDA the torch backend "
            "serves --weights or the published weights"
        )
    elif (device_kind == _CPU or onnxruntime) and precision in CUDA_ONLY:
        problems.append(f"{precision} runs on CUDA only (--device cuda); on the CPU use fp32, or bf16 with --backend torch")
    elif onnxruntime and precision not in (AUTO, FP32):
        problems.append(f"the onnxruntime backend runs in fp32 only; use --backend torch for {precision}")
    return problems
