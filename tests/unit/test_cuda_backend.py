"""The CUDA backend's logic on the CPU: buckets, padding, chunking, the mixed-precision model, the TF32 flags.

The pipeline runs here on device "cpu" (no graphs, no pinned memory) with a small DenseNet, so every batch
size, chunk and padding path is exercised without a GPU, and with other torchvision classifiers (their own
class counts and input sizes) through the general wrapper; tests/gpu repeats the parity checks on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import DenseNet, efficientnet_b1, resnet18

from densenet_server.backends.buckets import Chunk, bucket_sizes, choose_bucket, plan_chunks
from densenet_server.backends.cuda_backend import CudaBackend, math_mode, pad_into, unpadded
from densenet_server.backends.cuda_modules import ServedClassifier, ServedDenseNet, served_module

INPUT_SHAPE = (3, 224, 224)  # the small DenseNet's input, as DenseNet-121's record gives it
CLASSES = 1000


@pytest.mark.parametrize(
    ("largest", "buckets"),
    [
        (1, (1,)), (2, (1, 2)), (4, (1, 2, 4)), (5, (1, 2, 4, 5)), (100, (1, 2, 4, 8, 16, 32, 64, 100)),
        (128, (1, 2, 4, 8, 16, 32, 64, 128)),
    ],
)
def test_bucket_sizes(largest: int, buckets: tuple[int, ...]) -> None:
    assert bucket_sizes(largest) == buckets


def test_bucket_sizes_need_a_batch() -> None:
    with pytest.raises(ValueError):
        bucket_sizes(0)


@pytest.mark.parametrize(("rows", "bucket"), [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (8, 8)])
def test_choose_bucket(rows: int, bucket: int) -> None:
    assert choose_bucket(rows, (1, 2, 4, 8)) == bucket


@pytest.mark.parametrize("rows", [0, 9])
def test_choose_bucket_refuses_what_does_not_fit(rows: int) -> None:
    with pytest.raises(ValueError):
        choose_bucket(rows, (1, 2, 4, 8))


def test_plan_chunks_covers_every_row_once() -> None:
    buckets = bucket_sizes(128)
    assert plan_chunks(300, buckets) == [Chunk(0, 128, 128), Chunk(128, 256, 128), Chunk(256, 300, 64)]
    assert plan_chunks(3, buckets) == [Chunk(0, 3, 4)]
    for rows in range(1, 300):
        chunks = plan_chunks(rows, buckets)
        assert [c.start for c in chunks] == list(range(0, rows, 128))
        assert chunks[-1].stop == rows
        assert all(0 <= c.padding < c.rows for c in chunks)  # padding never doubles a pass


def test_pad_into_and_unpadded() -> None:
    static = torch.full((4, 2), 7.0)
    rows = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    padded = pad_into(static, rows)
    assert padded.data_ptr() == static.data_ptr()  # in place: a captured graph reads this buffer
    assert torch.equal(static, torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(unpadded(static * 10, 2), rows * 10)
    with pytest.raises(ValueError):
        pad_into(torch.zeros(1, 2), rows)


def with_batch_statistics(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so that a wrong layout or cast would show in the logits."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.2)
    return model.eval()


def small_densenet(seed: int = 7) -> nn.Module:
    """torchvision's DenseNet class, tiny; 1000 classes as served."""
    torch.manual_seed(seed)
    return with_batch_statistics(DenseNet(growth_rate=8, block_config=(1, 1, 1, 1), num_init_features=16, bn_size=2))


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return small_densenet()


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return np.random.default_rng(3).normal(0.0, 1.0, (9, 3, 224, 224)).astype(np.float32)


def reference_logits(model: nn.Module, pixels: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(pixels)).numpy()


def test_served_densenet_computes_torchvisions_forward(model: nn.Module, pixels: np.ndarray) -> None:
    with torch.inference_mode():
        fp32 = ServedDenseNet(model, torch.float32)(torch.from_numpy(pixels[:2])).numpy()
        bf16 = ServedDenseNet(model, torch.bfloat16)(torch.from_numpy(pixels[:2]))
    np.testing.assert_allclose(fp32, reference_logits(model, pixels[:2]), atol=1e-4)
    assert bf16.dtype == torch.float32  # the head runs in fp32 whatever the features' precision
    assert next(model.parameters()).dtype == torch.float32  # the caller's module is not converted


def test_served_densenet_wants_a_densenet() -> None:
    with pytest.raises(TypeError, match="DenseNet"):
        ServedDenseNet(nn.Linear(3, 3), torch.float32)


@pytest.mark.parametrize(("tf32", "expected"), [(False, False), (True, True)])
def test_math_mode_sets_tf32_and_restores_it(tf32: bool, expected: bool) -> None:
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark)
    with math_mode(tf32):
        assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark) == (expected, expected, True)
    assert (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark) == before


def test_every_batch_size_gives_each_rows_own_logits(model: nn.Module, pixels: np.ndarray) -> None:
    """Sizes 1..9 on buckets (1, 2, 4): padded passes, exact passes and several chunks."""
    backend = CudaBackend(model, "cpu", "fp32", 4, INPUT_SHAPE, CLASSES)
    assert (backend.name, backend.device, backend.precision, backend.lane_predicts) == ("torch", "cpu", "fp32", ())
    expected = reference_logits(model, pixels)
    for size in range(1, 10):
        logits = backend.predict(pixels[:size])
        assert logits.shape == (size, 1000) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected[:size], atol=1e-4)


def test_stale_rows_of_an_earlier_batch_do_not_leak(model: nn.Module, pixels: np.ndarray) -> None:
    backend = CudaBackend(model, "cpu", "fp32", 4, INPUT_SHAPE, CLASSES)
    alone = backend.predict(pixels[:1])
    backend.predict(pixels[1:5] * 100)  # fills the whole static buffer
    padded = backend.predict(np.concatenate([pixels[:1], pixels[:1], pixels[:1]]))  # bucket 4, one padding row
    np.testing.assert_allclose(padded, np.repeat(alone, 3, axis=0), atol=1e-5)


def test_warm_up_without_cuda_runs_each_bucket_eagerly(model: nn.Module, pixels: np.ndarray) -> None:
    backend = CudaBackend(model, "cpu", "bf16", 2, INPUT_SHAPE, CLASSES)
    assert backend.use_graphs is False  # graphs need CUDA
    assert backend.warm_up() > 0 and backend.warm_up_seconds is not None
    assert backend.captured_buckets == ()
    logits = backend.predict(pixels[:3])
    expected = reference_logits(model, pixels[:3])
    assert np.array_equal(logits.argmax(axis=1), expected.argmax(axis=1))


def test_predict_tensor_takes_pixels_already_on_the_device(model: nn.Module, pixels: np.ndarray) -> None:
    backend = CudaBackend(model, "cpu", "fp32", 4, INPUT_SHAPE, CLASSES)
    np.testing.assert_array_equal(backend.predict_tensor(torch.from_numpy(pixels[:5])), backend.predict(pixels[:5]))
    with pytest.raises(ValueError, match="float32 pixels on cpu"):
        backend.predict_tensor(torch.from_numpy(pixels[:2]).half())


@pytest.mark.parametrize("shape", [(3, 224, 224), (2, 3, 224, 225), (0, 3, 224, 224)])
def test_a_batch_of_another_shape_is_refused(model: nn.Module, shape: tuple[int, ...]) -> None:
    backend = CudaBackend(model, "cpu", "fp32", 2, INPUT_SHAPE, CLASSES)
    with pytest.raises(ValueError, match=r"\[N, 3, 224, 224\]"):
        backend.predict(np.zeros(shape, np.float32))


def test_an_unknown_precision_is_refused(model: nn.Module) -> None:
    with pytest.raises(ValueError, match="fp32, tf32, fp16, bf16"):
        CudaBackend(model, "cpu", "int8", 2, INPUT_SHAPE, CLASSES)


# --- any other torchvision classifier: the general wrapper ---------------------------------------------------


@dataclass(frozen=True)
class Classifier:
    """A torchvision classifier that is not a DenseNet, as a checkpoint of it would be served."""

    module: nn.Module
    input_shape: tuple[int, int, int]
    classes: int

    def pixels(self, count: int, seed: int = 5) -> np.ndarray:
        return np.random.default_rng(seed).normal(0.0, 1.0, (count, *self.input_shape)).astype(np.float32)

    def backend(self, precision: str = "fp32", max_batch_size: int = 4) -> CudaBackend:
        return CudaBackend(self.module, "cpu", precision, max_batch_size, self.input_shape, self.classes)


def seeded(build: Callable[[], nn.Module], seed: int = 11) -> nn.Module:
    torch.manual_seed(seed)
    return with_batch_statistics(build())


CLASSIFIERS = {
    # A fine-tuned ResNet with its own 14 classes (a 1000-class buffer would not hold its logits).
    "resnet18 14 classes": lambda: Classifier(seeded(lambda: resnet18(num_classes=14)), (3, 224, 224), 14),
    # A .features module too, but a Sequential head with dropout: not a DenseNet; its crop is 240.
    "efficientnet_b1 240": lambda: Classifier(seeded(efficientnet_b1), (3, 240, 240), 1000),
}


@pytest.fixture(scope="module", params=sorted(CLASSIFIERS))
def classifier(request: pytest.FixtureRequest) -> Classifier:
    return CLASSIFIERS[request.param]()


def test_the_wrapper_follows_the_modules_structure(model: nn.Module, classifier: Classifier) -> None:
    densenet = served_module(model, torch.bfloat16)
    assert isinstance(densenet, ServedDenseNet)
    assert densenet.classifier.weight.dtype == torch.float32  # a DenseNet's head stays in fp32
    other = served_module(classifier.module, torch.bfloat16)
    assert isinstance(other, ServedClassifier)
    assert {parameter.dtype for parameter in other.parameters()} == {torch.bfloat16}  # the whole module
    assert {parameter.dtype for parameter in classifier.module.parameters()} == {torch.float32}  # a copy
    with torch.inference_mode():
        assert other(torch.from_numpy(classifier.pixels(1))).dtype == torch.float32  # what a graph's output holds


def test_another_classifier_agrees_with_its_own_fp32_module(classifier: Classifier) -> None:
    """Sizes 1..5 on buckets (1, 2, 4): padded passes and two chunks."""
    backend = classifier.backend()
    pixels = classifier.pixels(5)
    expected = reference_logits(classifier.module, pixels)
    # Relative to the logits' size: random EfficientNet logits are below 0.2 (measured: 6e-8 apart; ResNet's
    # up to 4.2, 1.7e-6 apart).
    tolerance = 1e-4 * np.abs(expected).max()
    for size in (1, 3, 5):
        logits = backend.predict(pixels[:size])
        assert logits.shape == (size, classifier.classes) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected[:size], rtol=0, atol=tolerance)


def test_another_classifiers_padding_changes_no_row(classifier: Classifier) -> None:
    backend = classifier.backend()
    pixels = classifier.pixels(5)
    alone = backend.predict(pixels[:1])
    backend.predict(pixels[1:5] * 100)  # fills the whole static buffer
    padded = backend.predict(np.concatenate([pixels[:1]] * 3))  # bucket 4, one padding row
    np.testing.assert_allclose(padded, np.repeat(alone, 3, axis=0), rtol=1e-5, atol=1e-5)


def test_another_classifier_in_reduced_precision_is_the_same_model() -> None:
    classifier = CLASSIFIERS["resnet18 14 classes"]()  # one is enough: bf16 convolutions are slow on a CPU
    pixels = classifier.pixels(2)
    logits = classifier.backend("bf16", max_batch_size=2).predict(pixels)
    assert logits.shape == (2, classifier.classes) and logits.dtype == np.float32
    expected = reference_logits(classifier.module, pixels)
    # bf16 keeps 8 bits of mantissa: measured 0.031 apart for logits up to 4.2; not fp32's digits.
    assert np.abs(logits - expected).max() <= 0.1 * np.abs(expected).max()


def test_another_classifier_refuses_a_batch_of_another_input_size(classifier: Classifier) -> None:
    side = classifier.input_shape[1]
    with pytest.raises(ValueError, match=rf"\[N, 3, {side}, {side}\]"):
        classifier.backend().predict(np.zeros((1, 3, side + 1, side + 1), np.float32))
