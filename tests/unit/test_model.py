from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest
import torch
from support.random_weights import write_checkpoint
from torch import nn

from densenet_server.backends import load_backend
from densenet_server.config import Settings
from densenet_server.model import checkpoint_classes, load_local_weights, load_published_weights, remap_legacy_keys
from densenet_server.model_catalog import torchvision_record
from densenet_server.model_record import DENSENET121
from densenet_server.weights import (
    WeightsError,
    WeightsInfo,
    file_sha256,
    is_published_sha256,
    local_weights_info,
)

PUBLISHED_ID = DENSENET121.published.id  # type: ignore[union-attr]
PUBLISHED_URL = "https://download.pytorch.org/models/densenet121-a639ec97.pth"


def test_legacy_keys_are_remapped_like_torchvision() -> None:
    legacy = {
        "features.denseblock1.denselayer1.norm.1.weight": torch.zeros(1),
        "features.denseblock4.denselayer16.conv.2.weight": torch.zeros(1),
        "features.norm0.running_var": torch.zeros(1),
        "classifier.bias": torch.zeros(1),
    }
    assert list(remap_legacy_keys(legacy)) == [
        "features.denseblock1.denselayer1.norm1.weight",
        "features.denseblock4.denselayer16.conv2.weight",
        "features.norm0.running_var",
        "classifier.bias",
    ]


def test_checkpoint_fixture_uses_the_legacy_format(checkpoint_path: Path) -> None:
    keys = torch.load(checkpoint_path, weights_only=True).keys()
    assert "features.denseblock1.denselayer1.norm.1.weight" in keys
    assert not any(key.endswith("num_batches_tracked") for key in keys)


def test_local_weights_load_exactly(checkpoint_path: Path, reference_model: nn.Module) -> None:
    loaded = load_local_weights(checkpoint_path)
    for name, tensor in reference_model.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(loaded.module.state_dict()[name], tensor), name
    assert not loaded.module.training
    # 1000 classes, as published: the record stays the published one, ImageNet's categories included.
    assert loaded.record == DENSENET121 and len(loaded.categories) == 1000
    assert loaded.weights.published is False
    assert loaded.weights.sha256 == file_sha256(checkpoint_path)
    assert loaded.weights.id == f"file {checkpoint_path.name} sha256:{file_sha256(checkpoint_path)[:16]}"
    assert loaded.weights.warning == (
        f"These are not torchvision's published {PUBLISHED_ID} weights ({loaded.weights.id}); "
        "labels are only meaningful if this checkpoint was trained on ImageNet-1k."
    )


@pytest.fixture(scope="module")
def fourteen_classes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """A DenseNet-121 fine-tuned for 14 classes (as chest X-ray models are), in torchvision's modern keys."""
    path = tmp_path_factory.mktemp("weights") / "xray.pth"
    model = write_checkpoint(path, num_classes=14)
    torch.save(model.state_dict(), path)
    return path, model


def test_the_class_count_comes_from_the_checkpoint(fourteen_classes: tuple[Path, nn.Module]) -> None:
    path, model = fourteen_classes
    loaded = load_local_weights(path, DENSENET121)
    assert loaded.record.categories == tuple(f"class_{index}" for index in range(14))
    assert loaded.record.published_categories is False
    assert loaded.record.preprocessing == DENSENET121.preprocessing
    assert loaded.weights.warning == (
        f"These are not torchvision's published {PUBLISHED_ID} weights ({loaded.weights.id}); "
        "answers are only as good as this checkpoint."
    )
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    ("architecture", "head"),
    [
        ("densenet121", "classifier"),
        ("resnet50", "fc"),
        ("efficientnet_b0", "classifier.1"),
        ("mobilenet_v3_large", "classifier.3"),
        ("convnext_tiny", "classifier.2"),
        ("vit_b_16", "heads.head"),
        ("squeezenet1_0", "classifier.1"),  # a 1x1 convolution
        ("regnet_y_400mf", "fc"),  # its builder cannot run on the meta device
        ("regnet_x_400mf", "fc"),
    ],
)
def test_the_class_count_is_read_from_the_architectures_head(architecture: str, head: str, tmp_path: Path) -> None:
    state_dict = {f"{head}.weight": torch.zeros(14, 8), "other.weight": torch.zeros(3, 8)}
    assert checkpoint_classes(state_dict, architecture, tmp_path / "x.pth") == 14


def test_a_checkpoint_of_another_architecture_is_refused(
    checkpoint_path: Path, fourteen_classes: tuple[Path, nn.Module]
) -> None:
    # Another head name: resnet's is fc.
    with pytest.raises(WeightsError, match=rf"^{checkpoint_path} is not a resnet18 state dict: it has no fc.weight$"):
        load_local_weights(checkpoint_path, torchvision_record("resnet18"))
    # The same head name, other layers: densenet169 is deeper and its classifier wider.
    with pytest.raises(WeightsError, match=rf"^{fourteen_classes[0]} is not a densenet169 state dict: Error\(s\) in loading"):
        load_local_weights(fourteen_classes[0], torchvision_record("densenet169"))


def test_matching_sha256_is_accepted(checkpoint_path: Path) -> None:
    loaded = load_local_weights(checkpoint_path, expected_sha256=file_sha256(checkpoint_path).upper())
    assert loaded.weights.sha256 == file_sha256(checkpoint_path)


def test_wrong_sha256_is_refused(checkpoint_path: Path) -> None:
    with pytest.raises(WeightsError, match=f"has sha256 {file_sha256(checkpoint_path)}, but {'0' * 64} was expected"):
        load_local_weights(checkpoint_path, expected_sha256="0" * 64)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_local_weights(tmp_path / "nothing.pth")


def test_non_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_local_weights(path)


def test_other_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "linear.pth"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(WeightsError, match=rf"^{path} is not a densenet121 state dict: it has no classifier.weight$"):
        load_local_weights(path)


def test_file_sha256_on_known_bytes(tmp_path: Path) -> None:
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    # FIPS 180-2's test vector for "abc".
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    # More than one read chunk (1 MiB), so the chunks must all be hashed, in order.
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 8192 + b"tail")
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("sha256", "published"),
    [
        ("a639ec97" + "0" * 56, True),
        ("A639EC97" + "f" * 56, True),
        ("a639ec98" + "0" * 56, False),
        ("0" * 56 + "a639ec97", False),
        ("a639ec9", False),
    ],
)
def test_published_identity_is_the_hash_prefix(sha256: str, published: bool) -> None:
    assert is_published_sha256(sha256, DENSENET121) is published


def test_a_file_named_like_the_published_one_is_not_published(tmp_path: Path) -> None:
    path = tmp_path / "densenet121-a639ec97.pth"
    path.write_bytes(b"not the published weights")
    info = local_weights_info(path, DENSENET121)
    assert info.published is False
    assert info.id == f"file densenet121-a639ec97.pth sha256:{file_sha256(path)[:16]}"
    assert info.warning and info.warning.startswith(f"These are not torchvision's published {PUBLISHED_ID} weights")


def test_a_file_with_the_published_hash_is_published_whatever_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding bytes whose SHA-256 starts with a639ec97 would take ~2^32 hashes: the hash function is
    # tested on known bytes above, and here the file's digest is given, not the check under test.
    published_digest = "a639ec97" + "1" * 56
    path = tmp_path / "my-weights.pth"
    path.write_bytes(b"x")
    monkeypatch.setattr("densenet_server.weights.file_sha256", lambda _: published_digest)
    info = local_weights_info(path, DENSENET121)
    assert info == WeightsInfo(PUBLISHED_ID, True, published_digest)
    assert info.warning is None


def test_weights_info_round_trips_through_a_dict() -> None:
    info = WeightsInfo("file x.pth sha256:0123", False, "0123" * 16)
    assert WeightsInfo.from_dict(info.to_dict()) == info


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torch.hub with an empty cache and no network: every download fails as on a machine without DNS.
    Returns the URLs asked for."""
    asked: list[str] = []

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        asked.append(url)
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "urlopen", no_network)  # a guard: nothing is downloaded, whatever path torch takes
    return asked


def test_an_offline_first_start_says_what_failed_and_what_to_do(tmp_path: Path, offline_hub: list[str]) -> None:
    with pytest.raises(WeightsError) as raised:
        load_published_weights()
    message = str(raised.value)
    assert offline_hub == [PUBLISHED_URL]
    assert f"could not be downloaded from {PUBLISHED_URL} into {tmp_path / 'hub' / 'checkpoints'}" in message
    assert "Name or service not known" in message
    for way_around in ("--weights", "DENSENET_WEIGHTS", "--onnx-model", "TORCH_HOME"):
        assert way_around in message
    assert isinstance(raised.value.__cause__, urllib.error.URLError)


def test_the_server_reports_the_failed_download_too(tmp_path: Path, offline_hub: list[str]) -> None:
    """The default start (onnxruntime, published weights, no cached export) goes through the same load."""
    with pytest.raises(WeightsError, match="published weights .* could not be downloaded"):
        load_backend(Settings(cache_dir=tmp_path / "exports", threads=1))
    assert offline_hub == [PUBLISHED_URL]
