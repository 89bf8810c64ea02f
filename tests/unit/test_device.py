"""--device: every branch of resolve_device() against fake PyTorch installs, one real call, and the settings."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from densenet_server import device
from densenet_server.config import Settings, load_settings
from densenet_server.device import DeviceError, resolve_device


def fake_torch(version: str = "2.11.0+cu130", cuda: str | None = "13.0", built: bool = True, count: int = 1) -> types.ModuleType:
    """The few attributes of torch that device.py reads."""
    module = types.ModuleType("torch")
    module.__version__ = version
    module.version = types.SimpleNamespace(cuda=cuda)
    module.backends = types.SimpleNamespace(cuda=types.SimpleNamespace(is_built=lambda: built))
    module.cuda = types.SimpleNamespace(device_count=lambda: count)
    return module


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """install(torch_module or None, driver=bool): what this process would find; records torch imports."""
    imports: list[str] = []

    def apply(module: types.ModuleType | None, driver: bool = True) -> list[str]:
        def import_torch() -> types.ModuleType | None:
            imports.append("torch")
            return module

        driver_file = tmp_path / "nvidiactl"
        if driver:
            driver_file.touch()
        monkeypatch.setattr(device, "_torch_installed", lambda: module is not None)
        monkeypatch.setattr(device, "_import_torch", import_torch)
        monkeypatch.setattr(device, "DRIVER_FILES", (driver_file,))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        return imports

    return apply


@pytest.mark.parametrize(
    ("module", "driver", "expected", "imports_torch"),
    [
        (None, True, "cpu", False),  # the torch-free install: never imports it
        (fake_torch(), False, "cpu", False),  # no NVIDIA driver: torch stays unimported
        (fake_torch(version="2.14.1+cpu", cuda=None, built=False, count=0), True, "cpu", True),
        (fake_torch(count=0), True, "cpu", True),
        (fake_torch(version="2.3.1+cu121"), True, "cpu", True),  # a GPU, but a torch too old for the backend
        (fake_torch(count=2), True, "cuda:0", True),
    ],
    ids=["no-torch", "no-driver", "cpu-build", "no-gpu", "old-torch", "two-gpus"],
)
def test_auto(install, module: types.ModuleType | None, driver: bool, expected: str, imports_torch: bool) -> None:
    imports = install(module, driver)
    assert resolve_device("auto") == expected
    assert bool(imports) == imports_torch


def test_cpu_never_looks_for_torch(install) -> None:
    imports = install(fake_torch(count=4))
    assert resolve_device("cpu") == "cpu"
    assert imports == []


@pytest.mark.parametrize(
    ("module", "setting", "expected"),
    [
        (fake_torch(count=1), "cuda", "cuda:0"), (fake_torch(count=2), "cuda:1", "cuda:1"),
        (fake_torch(count=1), "CUDA:0", "cuda:0"),
    ],
)
def test_cuda_present(install, module: types.ModuleType, setting: str, expected: str) -> None:
    install(module, driver=False)  # an explicit request asks torch even where no driver file is seen
    assert resolve_device(setting) == expected


@pytest.mark.parametrize(
    ("module", "setting", "message"),
    [
        (None, "cuda", r"asks for CUDA, but PyTorch is not installed"),
        (
            fake_torch(version="2.14.1+cpu", cuda=None, built=False, count=0),
            "cuda",
            r"CPU-only build \(torch 2\.14\.1\+cpu, torch\.version\.cuda None, 0 CUDA device\(s\) visible\)",
        ),
        (
            fake_torch(count=0),
            "cuda",
            r"PyTorch sees no CUDA device \(torch 2\.11\.0\+cu130, torch\.version\.cuda 13\.0, 0 CUDA device\(s\) visible\)",
        ),
        (fake_torch(count=2), "cuda:2", r"no CUDA device 2: devices 0 to 1 are visible \(torch 2\.11\.0"),
        (fake_torch(version="2.3.1+cu121"), "cuda", r"needs PyTorch >= 2\.4 \(torch 2\.3\.1\+cu121"),
    ],
    ids=["no-torch", "cpu-build", "no-gpu", "index-out-of-range", "old-torch"],
)
def test_cuda_absent_is_an_error_naming_what_was_found(install, module, setting: str, message: str) -> None:
    install(module)
    with pytest.raises(DeviceError, match=message) as caught:
        resolve_device(setting)
    assert f"--device {setting} asks for CUDA" in str(caught.value)


def test_the_error_names_cuda_visible_devices(install, monkeypatch: pytest.MonkeyPatch) -> None:
    install(fake_torch(count=0))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceError, match=r"CUDA_VISIBLE_DEVICES=''"):
        resolve_device("cuda")


@pytest.mark.parametrize("setting", ["gpu", "cuda:", "cuda:x", "cpu:0", "auto:1", "cuda:-1", ""])
def test_settings_that_are_not_devices(setting: str) -> None:
    assert not device.is_valid_setting(setting)
    with pytest.raises(DeviceError, match="auto, cpu, cuda or cuda:N"):
        resolve_device(setting)
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N"):
        load_settings({}, environ={"DENSENET_DEVICE": setting})


def test_the_setting_and_its_default() -> None:
    assert Settings().device == "auto"
    assert load_settings({}, environ={"DENSENET_DEVICE": "cuda:1"}).device == "cuda:1"
    assert load_settings({"device": "cpu"}, environ={"DENSENET_DEVICE": "cuda"}).device == "cpu"


def test_real_pytorch_on_this_machine() -> None:
    """No fakes: the torch installed here, on whatever machine runs the tests."""
    assert resolve_device("cpu") == "cpu"
    gpus = torch.cuda.device_count()
    if gpus == 0:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(DeviceError, match=rf"CUDA.*torch {re.escape(torch.__version__)}.*0 CUDA device"):
            resolve_device("cuda")
    else:
        assert resolve_device("cuda") == "cuda:0"
    with pytest.raises(DeviceError, match=f"no CUDA device {gpus}" if gpus else "no CUDA device"):
        resolve_device(f"cuda:{gpus}")


@pytest.mark.skipif(any(p.exists() for p in device.DRIVER_FILES), reason="an NVIDIA driver is visible here")
def test_auto_on_a_machine_without_a_gpu_does_not_import_torch() -> None:
    code = (
        "import sys; from densenet_server.device import resolve_device; "
        "print(resolve_device('auto'), 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["cpu", "False"]


@pytest.mark.parametrize(
    ("setting", "kind", "cuda"),
    [("auto", "auto", False), ("cpu", "cpu", False), ("cuda", "cuda", True), ("cuda:3", "cuda", True)],
)
def test_kinds(setting: str, kind: str, cuda: bool) -> None:
    assert device.device_kind(setting) == kind
    assert device.is_cuda(setting) is cuda
