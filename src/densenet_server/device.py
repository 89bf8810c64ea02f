"""Which device runs the model: the --device setting (auto, cpu, cuda, cuda:N) resolved against what PyTorch sees.

The server runs without PyTorch on the CPU (ONNX Runtime), so torch is imported only when the answer
depends on it. ``auto`` means "CUDA when PyTorch sees a GPU, else the CPU path": with no torch installed,
or no NVIDIA driver visible to this process, it is the CPU without importing torch at all (importing it
costs a second and hundreds of MB on every CPU-only server). Asking for CUDA explicitly where there is none
is an error that says what was found, never a silent fallback to the CPU.

GPUs are counted with torch.cuda.device_count(), which asks NVML where it can and so does not initialise
CUDA in this process (a process that initialised CUDA cannot use it in children it forks).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

AUTO = "auto"
CPU = "cpu"
CUDA = "cuda"

_SETTING = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")

# Present where an NVIDIA driver is usable by this process: the kernel module's files on Linux, also in a
# container given the GPU (docker --gpus, CDI); /dev/dxg is WSL2's GPU. Without any of them `auto` does not
# import torch. A GPU that none of them reveals is still used with an explicit --device cuda.
DRIVER_FILES = (Path("/proc/driver/nvidia/version"), Path("/dev/nvidiactl"), Path("/dev/dxg"))

# The GPU default for --max-batch-size, derived from the figures in issue 9 (one H100, fp16, not measured
# here): a CUDA-graph replay costs 2.1 ms at batch 1 and 5.2 ms at batch 32 (6,101 img/s), i.e. about
# 2.0 ms + 0.1 ms per image; at 128 that model gives ~15 ms a pass and ~8,500 img/s, near the ~8,700 img/s
# of the best eager batch (256), for half its latency and activation memory. To be re-measured with
# `densenet-server bench --device cuda`.
CUDA_MAX_BATCH_SIZE = 128
# The CUDA backend's oldest PyTorch (CUDA-graph pools, torchvision's batched nvJPEG decoding: torch 2.4 with
# torchvision 0.19); newer machines may carry an older torch than the one this project pins.
MIN_TORCH = (2, 4)


class DeviceError(RuntimeError):
    """The device asked for is not there (or the setting is not a device)."""


def parse_setting(setting: str) -> tuple[str, int | None]:
    """("auto" | "cpu" | "cuda", index or None); raises DeviceError for anything else (e.g. "cpu:1")."""
    match = _SETTING.match(setting.strip().lower())
    if not match or (match.group(2) is not None and match.group(1) != CUDA):
        raise DeviceError(f"--device must be auto, cpu, cuda or cuda:N (N a GPU index), not {setting!r}")
    return match.group(1), None if match.group(2) is None else int(match.group(2))


def is_valid_setting(setting: str) -> bool:
    try:
        parse_setting(setting)
    except DeviceError:
        return False
    return True


def device_kind(device: str) -> str:
    """"auto", "cpu" or "cuda", for a setting or a resolved device."""
    return parse_setting(device)[0]


def is_cuda(device: str) -> bool:
    return device_kind(device) == CUDA


def _torch_installed() -> bool:
    # Finding the package does not import it.
    return importlib.util.find_spec("torch") is not None


def _import_torch() -> ModuleType | None:
    if not _torch_installed():
        return None
    import torch

    return torch


def torch_version(torch: ModuleType) -> tuple[int, int]:
    """(major, minor) of torch.__version__ ("2.11.0+cu130" -> (2, 11))."""
    match = re.match(r"(\d+)\.(\d+)", str(torch.__version__))
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _driver_visible() -> bool:
    return any(path.exists() for path in DRIVER_FILES)


def describe_torch(torch: ModuleType | None) -> str:
    """What PyTorch offers, for error messages and the start-up log."""
    if torch is None:
        return "PyTorch is not installed"
    cuda_build = getattr(torch.version, "cuda", None)
    count = torch.cuda.device_count() if torch.backends.cuda.is_built() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    found = f"torch {torch.__version__}, torch.version.cuda {cuda_build}, {count} CUDA device(s) visible"
    return found + (f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else "")


def resolve_device(setting: str) -> str:
    """The concrete device for a --device setting: "cpu" or "cuda:N"; DeviceError if CUDA is asked for and absent."""
    kind, index = parse_setting(setting)
    if kind == CPU:
        return CPU
    if kind == AUTO:
        return _resolve_auto()
    return _resolve_cuda(setting, index or 0)


def _resolve_auto() -> str:
    if not _torch_installed():
        log.info("device auto: cpu (PyTorch is not installed)")
        return CPU
    if not _driver_visible():
        log.info("device auto: cpu (no NVIDIA driver visible: none of %s)", ", ".join(map(str, DRIVER_FILES)))
        return CPU
    torch = _import_torch()
    if torch is None or not torch.backends.cuda.is_built() or torch.cuda.device_count() < 1:
        log.info("device auto: cpu (%s)", describe_torch(torch))
        return CPU
    if torch_version(torch) < MIN_TORCH:
        log.warning("device auto: cpu, although there is a GPU: the CUDA backend needs torch >= %d.%d (%s)",
                    *MIN_TORCH, describe_torch(torch))
        return CPU
    log.info("device auto: cuda:0 (%s)", describe_torch(torch))
    return f"{CUDA}:0"


def _resolve_cuda(setting: str, index: int) -> str:
    asked = f"--device {setting} asks for CUDA"
    torch = _import_torch()
    if torch is None:
        raise DeviceError(
            f"{asked}, but PyTorch is not installed: install a CUDA build of PyTorch (>= 2.4) and torchvision"
        )
    found = describe_torch(torch)
    if not torch.backends.cuda.is_built():
        raise DeviceError(f"{asked}, but this PyTorch is a CPU-only build ({found}): install a CUDA build of PyTorch")
    if torch_version(torch) < MIN_TORCH:
        raise DeviceError(f"{asked}, but the CUDA backend needs PyTorch >= {MIN_TORCH[0]}.{MIN_TORCH[1]} ({found})")
    count = torch.cuda.device_count()
    if count < 1:
        raise DeviceError(
            f"{asked}, but PyTorch sees no CUDA device ({found}): check the NVIDIA driver (nvidia-smi), that the "
            "container was given the GPU (docker --gpus all, podman --device nvidia.com/gpu=all), and "
            "CUDA_VISIBLE_DEVICES"
        )
    if index >= count:
        raise DeviceError(f"{asked}, but there is no CUDA device {index}: devices 0 to {count - 1} are visible ({found})")
    log.info("device: cuda:%d (%s)", index, found)
    return f"{CUDA}:{index}"
