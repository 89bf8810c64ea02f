"""How `serve` uses the machine: CPUs and device found, front processes, inference threads and passes.

Decided once, in the master, before any process starts; every automatic setting (0 or auto) becomes a
number here, so that the engine and the fronts run with the same concrete settings, and the log, GET /
and the v2 server metadata can say what was chosen and why. The rules and the measurements behind them
are in docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import device as devices
from .config import Settings
from .cpus import CpuLimit, usable_cpus

# One front process parses ~1,300 small requests/s (issue 9's measurement on 16 cores): far above what
# a CPU engine classifies, so a CPU server needs few fronts; they are there for headroom and resilience.
CPUS_PER_CPU_FRONT = 8
MAX_CPU_FRONTS = 4
# A GPU engine classifies thousands of images a second, and Pillow decodes ~170 of them per core: every
# core but two (the engine's feeding threads and the kernel's network work) decodes for the GPU.
CPUS_KEPT_FROM_CUDA_FRONTS = 2


@dataclass(frozen=True)
class Layout:
    cpus: CpuLimit
    device: str
    fronts: int
    http_threads: int
    engine_threads: int
    parallel_passes: int
    max_batch_size: int
    max_queue_images: int
    decoding_pixels_per_front: int
    resize_strips: int

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["cpus"] = {"count": self.cpus.count, "source": self.cpus.source}
        return values

    def describe(self) -> str:
        return (
            f"{self.cpus.count} usable CPUs ({self.cpus.source}); device {self.device}; "
            f"{self.fronts} HTTP front process(es) x {self.http_threads} threads; engine: "
            f"{self.engine_threads} inference threads, {self.parallel_passes} parallel pass(es), "
            f"batches of up to {self.max_batch_size}, queue of {self.max_queue_images} images; a lone "
            f"image resized in up to {self.resize_strips} strip(s)"
        )


def default_fronts(cpus: int, on_cuda: bool) -> int:
    if on_cuda:
        return max(1, cpus - CPUS_KEPT_FROM_CUDA_FRONTS)
    return max(1, min(MAX_CPU_FRONTS, cpus // CPUS_PER_CPU_FRONT))


def choose_layout(settings: Settings, cpus: CpuLimit | None = None) -> tuple[Settings, Layout]:
    """The concrete settings every process of the server runs with, and the layout they describe.

    Raises device.DeviceError when CUDA is asked for and absent (never a fallback to the CPU)."""
    cpus = cpus or usable_cpus()
    device = devices.resolve_device(settings.device)
    on_cuda = devices.is_cuda(device)
    threads = settings.threads or cpus.count
    concrete = dataclasses.replace(settings, device=device, threads=threads)
    passes = 1 if on_cuda else concrete.effective_parallel_passes()
    concrete = dataclasses.replace(
        concrete,
        parallel_passes=passes,
        workers=settings.workers or default_fronts(cpus.count, on_cuda),
    )
    concrete = dataclasses.replace(
        concrete,
        max_batch_size=concrete.effective_max_batch_size(),
        max_queue_images=concrete.effective_max_queue_images(),
        resize_strips=settings.resize_strips or cpus.count,
    )
    # Each front bounds its own decoding; together they stay within the configured total, except that
    # one image of the largest allowed size must always fit in a front.
    per_front = max(settings.max_image_pixels, settings.max_decoding_pixels // concrete.workers)
    layout = Layout(
        cpus=cpus,
        device=device,
        fronts=concrete.workers,
        http_threads=settings.http_threads,
        engine_threads=threads,
        parallel_passes=passes,
        max_batch_size=concrete.max_batch_size,
        max_queue_images=concrete.max_queue_images,
        decoding_pixels_per_front=per_front,
        resize_strips=concrete.resize_strips,
    )
    return concrete, layout
