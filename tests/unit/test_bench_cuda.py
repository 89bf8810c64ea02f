"""`densenet-server bench --device cuda`: refused at once without CUDA; its table and served row from CUDA results;
each CUDA variant built for the served model's input size and class count."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from densenet_server.cli import main
from densenet_server.config import Settings
from densenet_server.device import DeviceError
from densenet_server.tooling.bench import BenchOptions, RawResult, Scenario, format_report, run_bench
from densenet_server.model import LoadedModel
from densenet_server.model_record import DENSENET121, Preprocessing
from densenet_server.tooling import bench_cuda
from densenet_server.tooling.bench_cuda import CUDA_BATCH_SIZES, cuda_label
from densenet_server.tooling.loadgen import LoadResult

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
def test_bench_refuses_cuda_before_measuring_anything(tmp_path) -> None:
    with pytest.raises(DeviceError, match="asks for CUDA"):
        run_bench(Settings(device="cuda"), BenchOptions(photos_dirs=[tmp_path / "no-photos-needed"]))


@no_cuda
def test_the_command_exits_with_the_device_error(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    assert main(["bench", "--device", "cuda", "--duration-s", "1"]) == 2
    assert "asks for CUDA" in caplog.text


def test_the_report_has_a_cuda_table_and_serves_from_it() -> None:
    label = cuda_label("cuda:0", graphs=True)
    rates = {size: 100.0 * size for size in CUDA_BATCH_SIZES}
    cuda_results = [
        RawResult(label, "fp16", 1, 2.1, rates),
        RawResult(cuda_label("cuda:0", graphs=False), "fp16", 1, 10.7, {s: r / 2 for s, r in rates.items()}),
    ]
    result = LoadResult(concurrency=1, seconds=1.0, latencies_s=[0.005], statuses=Counter({"200": 1}), images_ok=1)
    report = format_report(
        Settings(device="cuda"), [], [], [Scenario("POST /inference 500x375", 1, result, 100.0)], 3.0, "cuda:0", cuda_results
    )
    assert "### CUDA backend on cuda:0" in report
    assert "| torch cuda:0 graphs | fp16 | 1 | 2.1 | 100.0 | 800.0 | 3200.0 | 6400.0 | 12800.0 | 25600.0 |" in report
    assert "server backend: torch cuda:0 graphs fp16" in report  # auto precision on CUDA is fp16
    assert "Raw best for the served backend: 25600.0 img/s at batch size 256" in report


class Built(Exception):
    """Raised by the stand-in CudaBackend: the test needs no more than its arguments."""


def test_each_variant_is_built_for_the_served_models_input_and_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 14-class checkpoint of a model with another crop (EfficientNet-B1's 255 -> 240): neither 224 nor 1000.
    record = DENSENET121.with_changes(
        categories=tuple(f"class_{index}" for index in range(14)),
        preprocessing=Preprocessing(255, 240, "bilinear", DENSENET121.preprocessing.mean, DENSENET121.preprocessing.std),
    )
    built: list[tuple[object, ...]] = []

    def cuda_backend(module: object, device: str, precision: str, largest: int, *sizes: object, **options: object) -> None:
        built.append((device, largest, *sizes))
        raise Built

    monkeypatch.setattr(bench_cuda, "load_model", lambda *args: LoadedModel(None, record, None))  # type: ignore[arg-type]
    monkeypatch.setattr(bench_cuda, "CudaBackend", cuda_backend)
    with pytest.raises(Built):
        bench_cuda.measure_cuda(
            Settings(), "cuda:0", web_bytes=[], repeats=1, answers={}, report=lambda line: None
        )
    assert built == [("cuda:0", max(CUDA_BATCH_SIZES), (3, 240, 240), 14)]
