"""The layout `serve` chooses from the usable CPUs and the device: every automatic setting made concrete."""

from __future__ import annotations

import pytest

from densenet_server import layout as layouts
from densenet_server.config import load_settings
from densenet_server.cpus import CpuLimit
from densenet_server.device import DeviceError


def choose(cpus: int, device: str = "cpu", **flags: object) -> tuple[object, layouts.Layout]:
    settings = load_settings({"device": device, **flags}, environ={})
    return layouts.choose_layout(settings, CpuLimit(cpus, "test"))


@pytest.mark.parametrize(
    ("cpus", "fronts", "passes", "batch", "queue"),
    [
        # 2 cores: today's measured layout (two 1-thread passes, batches of 4, a queue of 64), one front.
        (2, 1, 2, 4, 64),
        (8, 1, 8, 4, 64),
        # 16 cores: one 1-thread pass per CPU (issue 10: 16 x 1 beat every wider layout), two fronts.
        (16, 2, 16, 4, 128),
        (64, 4, 64, 4, 512),
    ],
)
def test_cpu_defaults(cpus: int, fronts: int, passes: int, batch: int, queue: int) -> None:
    settings, layout = choose(cpus)
    assert (layout.fronts, layout.engine_threads, layout.parallel_passes, layout.max_batch_size, layout.max_queue_images) == (
        fronts, cpus, passes, batch, queue
    )
    assert (settings.workers, settings.threads, settings.parallel_passes, settings.max_batch_size, settings.max_queue_images) == (
        fronts, cpus, passes, batch, queue
    )
    assert layout.device == settings.device == "cpu"


def test_cuda_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layouts.devices, "resolve_device", lambda setting: "cuda:0")
    settings, layout = choose(16, device="cuda")
    # One pass at a time on the GPU, batches of 128, every CPU but two decoding for it.
    assert (layout.device, layout.fronts, layout.parallel_passes, layout.max_batch_size, layout.max_queue_images) == (
        "cuda:0", 14, 1, 128, 256
    )
    assert settings.device == "cuda:0"


def test_explicit_settings_win() -> None:
    _, layout = choose(16, workers=3, threads=6, parallel_passes=2, max_batch_size=16, max_queue_images=100)
    assert (layout.fronts, layout.engine_threads, layout.parallel_passes, layout.max_batch_size, layout.max_queue_images) == (
        3, 6, 2, 16, 100
    )


def test_the_decoding_budget_is_shared_by_the_fronts_but_always_fits_one_image() -> None:
    _, layout = choose(64, max_decoding_pixels=80_000_000, max_image_pixels=10_000_000)
    assert layout.fronts == 4 and layout.decoding_pixels_per_front == 20_000_000
    _, layout = choose(64, max_decoding_pixels=40_000_000, max_image_pixels=40_000_000)
    assert layout.decoding_pixels_per_front == 40_000_000


def test_cuda_asked_for_and_absent_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(setting: str) -> str:
        raise DeviceError(f"--device {setting} asks for CUDA, but none was found")

    monkeypatch.setattr(layouts.devices, "resolve_device", absent)
    with pytest.raises(DeviceError, match="asks for CUDA"):
        choose(2, device="cuda")


def test_the_layout_describes_itself() -> None:
    _, layout = choose(2)
    assert layout.describe() == (
        "2 usable CPUs (test); device cpu; 1 HTTP front process(es) x 96 threads; engine: 2 inference "
        "threads, 2 parallel pass(es), batches of up to 4, queue of 64 images; a lone image resized in up "
        "to 2 strip(s)"
    )
    assert layout.to_dict()["cpus"] == {"count": 2, "source": "test"}
    assert layout.to_dict()["resize_strips"] == 2


def test_a_lone_images_strips_follow_the_cpus_unless_set() -> None:
    concrete, layout = choose(16)
    assert (concrete.resize_strips, layout.resize_strips) == (16, 16)
    concrete, layout = choose(16, resize_strips=1)
    assert (concrete.resize_strips, layout.resize_strips) == (1, 1)
