"""Precisions per device: the defaults, the rules (in the settings and at load), and the backend chosen."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path

import pytest

from densenet_server.backends import loading
from densenet_server.backends.loading import LoadedBackend, chosen_backend, load_backend, serving_device
from densenet_server.config import Settings, load_settings
from densenet_server.device import DeviceError
from densenet_server.precision import combination_problems, effective_precision
from densenet_server.weights import WeightsError


@pytest.mark.parametrize(
    ("precision", "kind", "expected"),
    [
        ("auto", "cpu", "fp32"), ("auto", "cuda", "fp16"), ("bf16", "cpu", "bf16"), ("fp32", "cuda", "fp32"),
        ("tf32", "cuda", "tf32"),
    ],
)
def test_effective_precision(precision: str, kind: str, expected: str) -> None:
    assert effective_precision(precision, kind) == expected


@pytest.mark.parametrize(
    ("kind", "backend", "precision", "onnx_model", "problem"),
    [
        ("cpu", "auto", "auto", False, None),
        ("cpu", "torch", "bf16", False, None),
        ("cpu", "auto", "fp16", False, "fp16 runs on CUDA only"),
        ("cpu", "torch", "tf32", False, "tf32 runs on CUDA only"),
        ("cpu", "onnxruntime", "bf16", False, "onnxruntime backend runs in fp32 only"),
        ("auto", "auto", "fp16", False, None),  # decided once the device is resolved
        ("auto", "onnxruntime", "fp16", False, "fp16 runs on CUDA only"),
        ("auto", "auto", "tf32", True, "tf32 runs on CUDA only"),
        ("cuda", "auto", "fp16", False, None),
        ("cuda", "torch", "bf16", False, None),
        ("cuda", "onnxruntime", "fp32", False, "onnxruntime (--backend onnxruntime, --onnx-model) runs on the CPU only"),
        ("cuda", "auto", "auto", True, "runs on the CPU only"),
    ],
)
def test_combinations(kind: str, backend: str, precision: str, onnx_model: bool, problem: str | None) -> None:
    problems = combination_problems(kind, backend, precision, onnx_model)
    assert problems == [] if problem is None else (len(problems) == 1 and problem in problems[0])


@pytest.mark.parametrize(
    "environ",
    [
        {"DENSENET_DEVICE": "cpu", "DENSENET_PRECISION": "fp16"},
        {"DENSENET_DEVICE": "cuda", "DENSENET_BACKEND": "onnxruntime"},
        {"DENSENET_DEVICE": "cuda", "DENSENET_ONNX_MODEL": "/model.onnx"},
        {"DENSENET_BACKEND": "onnxruntime", "DENSENET_PRECISION": "bf16"},
        {"DENSENET_ONNX_MODEL": "/model.onnx", "DENSENET_PRECISION": "tf32"},
        {"DENSENET_PRECISION": "fp64"},
    ],
)
def test_the_settings_refuse_what_cannot_run(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid configuration"):
        load_settings({}, environ=environ)


def test_the_settings_accept_cuda_precisions_for_later_resolution() -> None:
    for precision in ("fp32", "tf32", "fp16", "bf16", "auto"):
        assert load_settings({}, environ={"DENSENET_DEVICE": "cuda", "DENSENET_PRECISION": precision}).precision == precision
    assert load_settings({}, environ={"DENSENET_PRECISION": "fp16"}).device == "auto"


def test_the_cpu_choices_are_todays() -> None:
    assert Settings().precision == "auto"
    assert chosen_backend(Settings()) == "onnxruntime"
    assert chosen_backend(Settings(precision="fp32")) == "onnxruntime"
    assert chosen_backend(Settings(precision="bf16")) == "torch"
    assert chosen_backend(Settings(backend="torch"), "cpu") == "torch"


def test_on_cuda_the_backend_is_torch() -> None:
    for settings in (Settings(), Settings(backend="torch"), Settings(precision="bf16")):
        assert chosen_backend(settings, "cuda:0") == "torch"


def test_auto_with_a_cpu_only_backend_asks_no_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_resolve(setting: str) -> str:
        raise AssertionError("resolve_device was called")

    monkeypatch.setattr(loading, "resolve_device", must_not_resolve)
    assert serving_device(Settings(backend="onnxruntime")) == "cpu"
    assert serving_device(Settings(onnx_model=Path("/m.onnx"))) == "cpu"


def test_load_backend_on_cuda_builds_the_cuda_backend_in_fp16_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[str, str]] = []

    def fake_load_cuda(settings: Settings, device: str, precision: str) -> LoadedBackend:
        built.append((device, precision))
        raise RuntimeError("stop here: no GPU to build on")

    monkeypatch.setattr(loading, "resolve_device", lambda setting: "cuda:1")
    monkeypatch.setattr(loading, "_load_cuda", fake_load_cuda)
    for settings in (Settings(device="cuda:1"), Settings(device="cuda:1", precision="tf32")):
        with pytest.raises(RuntimeError, match="stop here"):
            load_backend(settings)
    assert built == [("cuda:1", "fp16"), ("cuda:1", "tf32")]


@pytest.mark.parametrize("precision", ["fp16", "tf32"])
def test_a_cuda_precision_where_auto_found_the_cpu_is_an_error(monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    monkeypatch.setattr(loading, "resolve_device", lambda setting: "cpu")
    with pytest.raises(DeviceError, match=rf"--device auto resolved to cpu: {precision} runs on CUDA only"):
        load_backend(Settings(precision=precision))


def test_onnxruntime_in_reduced_precision_is_still_refused_as_before() -> None:
    with pytest.raises(WeightsError, match="fp32 only"):
        load_backend(dataclasses.replace(Settings(), backend="onnxruntime", precision="bf16"))


def test_the_cuda_backend_gets_the_cuda_batch_default_also_when_auto_found_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import densenet_server.backends.cuda_backend as cuda_backend
    import densenet_server.model as model

    built: list[tuple[str, str, int]] = []
    monkeypatch.setattr(
        model, "load_model",
        lambda record, weights, sha256: types.SimpleNamespace(module=None, weights=None, record=record),
    )
    monkeypatch.setattr(
        cuda_backend, "CudaBackend",
        lambda module, device, precision, size, input_shape, classes: built.append((device, precision, size)),
    )
    loading._load_cuda(Settings(), "cuda:0", "fp16")  # --device auto, resolved to CUDA
    loading._load_cuda(Settings(max_batch_size=32), "cuda:0", "fp16")
    assert built == [("cuda:0", "fp16", 128), ("cuda:0", "fp16", 32)]


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [("densenet121", "fp16"), ("densenet201", "fp16"), ("resnet50", "fp32"), ("vit_b_16", "fp32")],
)
def test_auto_on_cuda_is_fp16_only_where_its_agreement_was_measured(architecture: str, expected: str) -> None:
    assert effective_precision("auto", "cuda", architecture) == expected
    assert effective_precision("auto", "cpu", architecture) == "fp32"
    assert effective_precision("fp16", "cuda", architecture) == "fp16"
