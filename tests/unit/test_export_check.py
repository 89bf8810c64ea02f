"""The export check on real exports: float32 noise beyond 1e-4 in probability is served, a wrong export is
refused with its figures (a missing layer, another operator's semantics, another model, another shape)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from support.random_weights import make_model
from torch import nn

import densenet_server.backends.onnx_export as onnx_export
from densenet_server.backends.export_verdict import LOGIT_TOLERANCE, PROBABILITY_TOLERANCE
from densenet_server.backends.onnx_backend import OnnxBackend
from densenet_server.backends.onnx_export import ExportError, export_onnx, verification_batch
from densenet_server.model_catalog import torchvision_record
from densenet_server.model_record import DENSENET121, ModelRecord
from densenet_server.weights import WeightsInfo

UNVERIFIED = WeightsInfo("x", False, None)
REFUSAL = (
    r"^the ONNX export differs from PyTorch on verification image [1-4] of 4 \([^)]+\): probabilities by "
    r"\S+ \(tolerance 0\.0001\) and logits by \S+, \S+ of their range \S+ \(tolerance 0\.001\)(; its top-5 "
    r"classes are \[[\d, ]+\], PyTorch's \[[\d, ]+\])?; an export must keep PyTorch's ranking and its "
    r"probabilities within 0\.0001 or its logits within 0\.001 of their range; refusing to use it$"
)


def logits(module: nn.Module, record: ModelRecord) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(verification_batch(record.preprocessing.input_shape))).numpy()


def writing(module_for_export: Callable[[nn.Module], nn.Module]) -> Callable[[nn.Module, np.ndarray, Path], None]:
    """_write_onnx, exporting another module in place of the one verified against."""
    write_onnx = onnx_export._write_onnx
    return lambda module, batch, target: write_onnx(module_for_export(module), batch, target)


def editing(edit: Callable[[onnx.ModelProto], None]) -> Callable[[nn.Module, np.ndarray, Path], None]:
    """_write_onnx, then ``edit`` applied to the graph written: a wrong export of the right module."""
    write_onnx = onnx_export._write_onnx

    def write_and_edit(module: nn.Module, batch: np.ndarray, target: Path) -> None:
        write_onnx(module, batch, target)
        graph = onnx.load(str(target))
        edit(graph)
        onnx.save(graph, str(target))

    return write_and_edit


def with_bias_moved(module: nn.Module, by: torch.Tensor) -> nn.Module:
    other = type(module)()
    other.load_state_dict(module.state_dict())
    with torch.no_grad():
        other.classifier.bias.add_(by)
    return other.eval()


def test_rounding_beyond_the_probability_tolerance_within_the_logit_tolerance_is_served(
    reference_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a badly conditioned network's float32 rounding does to its logits, made deterministic: every
    # logit moved by up to 2e-4 of the smallest logit range of the verification batch (a correct RegNet
    # export measured 1.8e-4 on an AVX2-only CPU).
    expected = logits(reference_model, DENSENET121)
    amplitude = 2e-4 * float(np.ptp(expected, axis=1).min())
    noise = torch.from_numpy(np.random.default_rng(22).uniform(-amplitude, amplitude, 1000).astype(np.float32))
    monkeypatch.setattr(onnx_export, "_write_onnx", writing(lambda module: with_bias_moved(module, noise)))
    report = export_onnx(reference_model, UNVERIFIED, DENSENET121, tmp_path / "model.onnx")
    assert report.max_probability_diff > PROBABILITY_TOLERANCE  # the logits' half of the rule served it
    assert report.max_relative_logit_diff < LOGIT_TOLERANCE
    info = OnnxBackend(report.path, 1).export_info
    assert info["verified_max_probability_diff"] == report.max_probability_diff
    assert info["verified_max_relative_logit_diff"] == report.max_relative_logit_diff


def test_a_model_that_computes_something_else_is_refused(
    reference_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        onnx_export, "_write_onnx", writing(lambda module: with_bias_moved(module, torch.linspace(-5, 5, 1000)))
    )
    with pytest.raises(ExportError, match=REFUSAL):
        export_onnx(reference_model, UNVERIFIED, DENSENET121, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the export nor its partial file is left


def drop_last_relu(graph: onnx.ModelProto) -> None:
    """The final ReLU before the pooling turned into an identity: a layer missing from the export."""
    [node for node in graph.graph.node if node.op_type == "Relu"][-1].op_type = "Identity"


def test_a_missing_layer_is_refused(reference_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "_write_onnx", editing(drop_last_relu))
    with pytest.raises(ExportError, match=REFUSAL) as refusal:
        export_onnx(reference_model, UNVERIFIED, DENSENET121, tmp_path / "model.onnx")
    assert "its top-5 classes are" in str(refusal.value)
    assert list(tmp_path.iterdir()) == []


def onnx_default_hard_sigmoid(graph: onnx.ModelProto) -> None:
    """HardSigmoid with ONNX's default slope (alpha 0.2) where PyTorch's hardsigmoid has 1/6: the classic
    mismatch of two frameworks' semantics for one operator's name."""
    hard_sigmoids = [node for node in graph.graph.node if node.op_type == "HardSigmoid"]
    assert hard_sigmoids
    for node in hard_sigmoids:
        del node.attribute[:]


def test_another_operators_semantics_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = torchvision_record("mobilenet_v3_small")
    module = make_model(architecture="mobilenet_v3_small")
    export_onnx(module, UNVERIFIED, record, tmp_path / "right.onnx")  # the export itself is served
    monkeypatch.setattr(onnx_export, "_write_onnx", editing(onnx_default_hard_sigmoid))
    with pytest.raises(ExportError, match=REFUSAL):
        export_onnx(module, UNVERIFIED, record, tmp_path / "wrong.onnx")
    assert [path.name for path in tmp_path.iterdir()] == ["right.onnx"]


def test_an_export_with_another_head_is_refused(
    reference_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_export, "_write_onnx", writing(lambda module: type(module)(num_classes=10).eval()))
    with pytest.raises(
        ExportError,
        match=r"^the ONNX export gives logits of shape \[4, 10\] where PyTorch gives \[4, 1000\]; refusing to use it$",
    ):
        export_onnx(reference_model, UNVERIFIED, DENSENET121, tmp_path / "model.onnx")
