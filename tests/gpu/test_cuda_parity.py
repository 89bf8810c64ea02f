"""The CUDA backend on a real GPU: parity with the CPU reference per precision, the fp16 default's rule, a
graph per bucket, padding, threads and bounded memory. Skipped without CUDA (scripts/test-gpu.sh runs them).

Figures are printed (pytest -rP shows them) so that a run on a new card documents itself.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from support.gpu import GPU
from support.reference import reference_probabilities
from torch import nn

from densenet_server.backends.buckets import bucket_sizes
from densenet_server.backends.cuda_backend import CudaBackend
from densenet_server.backends.loading import load_backend
from densenet_server.config import Settings
from densenet_server.decoding import decode_image
from densenet_server.device import resolve_device
from densenet_server.postprocess import softmax
from densenet_server.preprocess import preprocess

pytestmark = GPU

DEVICE = "cuda:0"
LARGEST = 64
FP32_TOLERANCE = 1e-4
DEFAULT_PRECISION_TOLERANCE = 1e-3  # the project's rule for a default precision (issue 9)


@pytest.fixture(scope="module")
def prepared(photos: list[Path]) -> np.ndarray:
    return np.stack([preprocess(decode_image(path.read_bytes(), 40_000_000)) for path in photos])


@pytest.fixture(scope="module")
def expected(reference_model: nn.Module, photos: list[Path]) -> np.ndarray:
    """torchvision's model and transforms on the CPU in fp32."""
    return reference_probabilities(reference_model, photos)


def probabilities(backend: CudaBackend, prepared: np.ndarray, batch: int = 48) -> np.ndarray:
    # 48: full buckets of 32 and padded ones of 16 both occur.
    return np.concatenate([softmax(backend.predict(prepared[i : i + batch])) for i in range(0, len(prepared), batch)])


def report(label: str, served: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    difference = float(np.abs(served - expected).max())
    top1 = float((served.argmax(axis=1) == expected.argmax(axis=1)).mean())
    print(f"{label} on {torch.cuda.get_device_name(0)}, torch {torch.__version__}: {len(served)} photos, "
          f"max probability difference {difference:.2e}, same top-1 {top1:.1%}")
    return difference, top1


@pytest.fixture(scope="module")
def fp32_backend(reference_model: nn.Module) -> CudaBackend:
    backend = CudaBackend(reference_model, DEVICE, "fp32", LARGEST)
    backend.warm_up()
    return backend


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_fp32_and_tf32_equal_the_cpu_reference(
    reference_model: nn.Module, prepared: np.ndarray, expected: np.ndarray, precision: str
) -> None:
    backend = CudaBackend(reference_model, DEVICE, precision, LARGEST)
    backend.warm_up()
    difference, top1 = report(f"CUDA {precision} vs CPU fp32", probabilities(backend, prepared), expected)
    assert difference < FP32_TOLERANCE and top1 == 1.0


def test_the_default_is_fp16_and_meets_the_rule_for_a_default(
    checkpoint_path: Path, prepared: np.ndarray, expected: np.ndarray
) -> None:
    loaded = load_backend(Settings(weights=checkpoint_path, device="cuda", max_batch_size=LARGEST))
    backend = loaded.backend
    assert (backend.name, backend.precision, backend.device) == ("torch", "fp16", DEVICE)
    backend.warm_up()
    difference, top1 = report("CUDA fp16 (default) vs CPU fp32", probabilities(backend, prepared), expected)
    assert difference < DEFAULT_PRECISION_TOLERANCE and top1 == 1.0


def test_bf16_is_the_same_model(reference_model: nn.Module, prepared: np.ndarray, expected: np.ndarray) -> None:
    backend = CudaBackend(reference_model, DEVICE, "bf16", LARGEST)
    backend.warm_up()
    difference, top1 = report("CUDA bf16 vs CPU fp32", probabilities(backend, prepared), expected)
    assert difference < 0.25 and top1 >= 0.75  # as the CPU's bf16 test: opt-in, not exact


def test_a_graph_is_captured_for_every_bucket_and_replays_as_eager(
    fp32_backend: CudaBackend, reference_model: nn.Module, prepared: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    assert fp32_backend.captured_buckets == bucket_sizes(LARGEST)
    eager = CudaBackend(reference_model, DEVICE, "fp32", LARGEST, use_graphs=False)
    with caplog.at_level(logging.INFO):
        seconds = eager.warm_up()
    assert eager.captured_buckets == () and seconds > 0
    assert "eager passes for batch buckets" in caplog.text
    batch = np.resize(prepared, (2 * LARGEST + 3, *prepared.shape[1:]))
    for size in (1, 2, 3, 5, 8, 13, 31, 32, 33, LARGEST, LARGEST + 1, 2 * LARGEST + 3):
        np.testing.assert_allclose(fp32_backend.predict(batch[:size]), eager.predict(batch[:size]), atol=1e-4)
    print(f"fp32 warm-up (graphs for {list(fp32_backend.captured_buckets)}): {fp32_backend.warm_up_seconds:.1f} s")


def test_padding_rows_change_no_answer(fp32_backend: CudaBackend, prepared: np.ndarray) -> None:
    alone = np.concatenate([fp32_backend.predict(prepared[i : i + 1]) for i in range(5)])
    fp32_backend.predict(np.resize(prepared * 50, (LARGEST, *prepared.shape[1:])))  # stale, extreme rows everywhere
    padded = fp32_backend.predict(prepared[:5])  # bucket 8: three padding rows
    np.testing.assert_allclose(padded, alone, atol=FP32_TOLERANCE)


def test_any_thread_may_predict(fp32_backend: CudaBackend, prepared: np.ndarray) -> None:
    here = fp32_backend.predict(prepared[:7])
    with ThreadPoolExecutor(4) as pool:
        for logits in pool.map(lambda _: fp32_backend.predict(prepared[:7]), range(8)):
            np.testing.assert_allclose(logits, here, atol=1e-6)


def test_gpu_memory_stays_flat_after_warm_up(fp32_backend: CudaBackend, prepared: np.ndarray) -> None:
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated(0)
    rng = np.random.default_rng(0)
    for size in rng.integers(1, 2 * LARGEST, 60):
        fp32_backend.predict(np.resize(prepared, (int(size), *prepared.shape[1:])))
    torch.cuda.synchronize()
    print(f"GPU memory after warm-up: {before / 2**20:.0f} MiB allocated; after 60 batches: "
          f"{torch.cuda.memory_allocated(0) / 2**20:.0f} MiB")
    assert torch.cuda.memory_allocated(0) == before


def test_auto_finds_the_gpu() -> None:
    assert resolve_device("auto") == DEVICE
    assert resolve_device("cuda") == DEVICE
