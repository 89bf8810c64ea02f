"""The CUDA backend on a real GPU: parity with the CPU reference per precision, the fp16 default's rule, a
graph per bucket, padding, threads and bounded memory; and other torchvision classifiers (a 14-class ResNet-18,
EfficientNet-B0) through the general wrapper, against their own CPU fp32 modules. Skipped without CUDA
(scripts/test-gpu.sh runs them).

Figures are printed (pytest -rP shows them) so that a run on a new card documents itself.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from support.gpu import GPU
from support.random_weights import make_model
from support.reference import reference_probabilities
from torch import nn

from densenet_server.backends.buckets import bucket_sizes
from densenet_server.backends.cuda_backend import CudaBackend
from densenet_server.backends.loading import load_backend
from densenet_server.config import Settings
from densenet_server.decoding import decode_image
from densenet_server.device import resolve_device
from densenet_server.model_catalog import base_record, with_class_count
from densenet_server.model_record import DENSENET121, ModelRecord, Preprocessing
from densenet_server.postprocess import softmax
from densenet_server.preprocess import preprocess

pytestmark = GPU

DEVICE = "cuda:0"
LARGEST = 64
FP32_TOLERANCE = 1e-4
DEFAULT_PRECISION_TOLERANCE = 1e-3  # the project's rule for a default precision (issue 9)


def prepare(photos: list[Path], preprocessing: Preprocessing) -> np.ndarray:
    """The Pillow path's inputs (bit-identical to torchvision's transforms, tests/unit/test_preprocess.py)."""
    return np.stack([preprocess(decode_image(path.read_bytes(), 40_000_000), preprocessing) for path in photos])


def cuda_backend(
    module: nn.Module, record: ModelRecord, precision: str, largest: int = LARGEST, use_graphs: bool = True
) -> CudaBackend:
    return CudaBackend(
        module, DEVICE, precision, largest, record.preprocessing.input_shape, record.num_classes, use_graphs
    )


@pytest.fixture(scope="module")
def prepared(photos: list[Path]) -> np.ndarray:
    return prepare(photos, DENSENET121.preprocessing)


@pytest.fixture(scope="module")
def expected(labelled_reference: np.ndarray) -> np.ndarray:
    """torchvision's model and transforms on the CPU in fp32."""
    return labelled_reference


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
    backend = cuda_backend(reference_model, DENSENET121, "fp32")
    backend.warm_up()
    return backend


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_fp32_and_tf32_equal_the_cpu_reference(
    reference_model: nn.Module, prepared: np.ndarray, expected: np.ndarray, precision: str
) -> None:
    backend = cuda_backend(reference_model, DENSENET121, precision)
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
    backend = cuda_backend(reference_model, DENSENET121, "bf16")
    backend.warm_up()
    difference, top1 = report("CUDA bf16 vs CPU fp32", probabilities(backend, prepared), expected)
    assert difference < 0.25 and top1 >= 0.75  # as the CPU's bf16 test: opt-in, not exact


def test_a_graph_is_captured_for_every_bucket_and_replays_as_eager(
    fp32_backend: CudaBackend, reference_model: nn.Module, prepared: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    assert fp32_backend.captured_buckets == bucket_sizes(LARGEST)
    eager = cuda_backend(reference_model, DENSENET121, "fp32", use_graphs=False)
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


# --- other torchvision classifiers: the general wrapper (the whole module in the compute precision) -------------


@dataclass(frozen=True)
class Other:
    module: nn.Module  # on the CPU in fp32: the reference
    record: ModelRecord
    prepared: np.ndarray


OTHERS = {
    # A fine-tuned ResNet with 14 classes of its own (bilinear, 256 -> 224).
    "resnet18": lambda: (make_model(seed=14, architecture="resnet18", num_classes=14), 14),
    # Bicubic, a .features module and a Sequential head: not a DenseNet.
    "efficientnet_b0": lambda: (make_model(seed=15, architecture="efficientnet_b0"), 1000),
}


@pytest.fixture(scope="module", params=sorted(OTHERS))
def other(request: pytest.FixtureRequest, photos: list[Path]) -> Other:
    module, classes = OTHERS[request.param]()
    record = with_class_count(base_record(request.param), classes)
    return Other(module, record, prepare(photos, record.preprocessing))


def cpu_logits(module: nn.Module, prepared: np.ndarray, batch: int = 16) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate([module(torch.from_numpy(prepared[i : i + batch])).numpy() for i in range(0, len(prepared), batch)])


def test_another_classifier_in_fp32_equals_its_cpu_module(other: Other) -> None:
    """From CUDA graphs, in buckets with padding; logits compared relative to the largest (random
    EfficientNet-B0's reach several hundred)."""
    backend = cuda_backend(other.module, other.record, "fp32")
    backend.warm_up()
    assert backend.captured_buckets == bucket_sizes(LARGEST)
    expected = cpu_logits(other.module, other.prepared)
    served = np.concatenate([backend.predict(other.prepared[i : i + 48]) for i in range(0, len(other.prepared), 48)])
    assert served.shape == (len(other.prepared), other.record.num_classes)
    relative = float(np.abs(served - expected).max() / np.abs(expected).max())
    top1 = float((served.argmax(1) == expected.argmax(1)).mean())
    print(f"{other.record.architecture} CUDA fp32 vs CPU fp32 on {torch.cuda.get_device_name(0)}: "
          f"{len(served)} photos, max logit difference {relative:.2e} of the largest, same top-1 {top1:.1%}")
    assert relative < FP32_TOLERANCE and top1 == 1.0
    alone = backend.predict(other.prepared[:1])
    backend.predict(np.resize(other.prepared * 50, (LARGEST, *other.prepared.shape[1:])))  # stale, extreme rows
    padded = backend.predict(np.concatenate([other.prepared[:1]] * 3))  # bucket 4: one padding row
    np.testing.assert_allclose(padded, np.repeat(alone, 3, axis=0), rtol=0, atol=FP32_TOLERANCE * np.abs(alone).max())


def test_another_classifiers_fp16_default_is_the_same_model(photos: list[Path], tmp_path: Path) -> None:
    """Served as `serve --model resnet18 --weights FILE --device cuda` would (fp16, the whole module in fp16),
    against torchvision's reference. Not the 1e-3 rule DenseNet's fp32 head meets: the bounds are provisional,
    from the same pipeline on the CPU in fp16 (2026-11-25, 48 shared photos: 7.8e-3 at most, the same top-1
    for 47); the first GPU run should replace them by its figures."""
    weights = tmp_path / "resnet18-14.pth"
    module = make_model(seed=14, architecture="resnet18", num_classes=14)
    torch.save(module.state_dict(), weights)
    loaded = load_backend(Settings(model="resnet18", weights=weights, device="cuda", max_batch_size=LARGEST))
    assert (loaded.backend.precision, loaded.record.num_classes) == ("fp16", 14)
    loaded.backend.warm_up()
    served = probabilities(loaded.backend, prepare(photos, loaded.record.preprocessing))
    expected = reference_probabilities(module, photos, architecture="resnet18")
    difference, top1 = report("resnet18 CUDA fp16 (default) vs CPU fp32", served, expected)
    assert difference < 0.02 and top1 >= 0.95
