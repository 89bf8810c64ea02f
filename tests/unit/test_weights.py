"""weights.py beyond test_model.py: what the answers and logs say about the weights, and the checks on a
local file. Torch-free, like the module."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from densenet_server.model_record import DENSENET121, PublishedWeights
from densenet_server.weights import (
    WeightsError,
    WeightsInfo,
    is_published_sha256,
    local_weights_info,
    published_weights_info,
    unpublished_weights_info,
)

# SHA-256 of b"abc" (FIPS 180-2), computed independently of the code under test.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PUBLISHED_ID = "DenseNet121_Weights.IMAGENET1K_V1"
PUBLISHED_INFO = published_weights_info(DENSENET121)
# resnet50's published weights as torchvision names them (tests/unit/test_model_catalog.py checks them
# against torchvision): written out so that this module stays torch-free.
RESNET50 = DENSENET121.with_changes(
    name="resnet50",
    architecture="resnet50",
    published=PublishedWeights(
        "ResNet50_Weights.IMAGENET1K_V2", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
    ),
    key_remap=None,
)
IMAGENET_WARNING = (
    f"These are not torchvision's published {PUBLISHED_ID} weights (file x.pth sha256:0123); "
    "labels are only meaningful if this checkpoint was trained on ImageNet-1k."
)


@pytest.fixture
def abc_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.pth"
    path.write_bytes(b"abc")
    return path


def test_a_local_file_is_named_by_its_file_name_and_hash(abc_file: Path) -> None:
    weights_id = f"file mine.pth sha256:{ABC_SHA256[:16]}"
    assert local_weights_info(abc_file, DENSENET121) == WeightsInfo(
        weights_id, False, ABC_SHA256, IMAGENET_WARNING.replace("file x.pth sha256:0123", weights_id)
    )


def test_an_empty_file_has_the_empty_digest(tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    assert local_weights_info(path, DENSENET121).sha256 == EMPTY_SHA256


def test_the_expected_hash_is_compared_case_and_space_insensitively(abc_file: Path) -> None:
    assert local_weights_info(abc_file, DENSENET121, f"  {ABC_SHA256.upper()}\n").sha256 == ABC_SHA256
    # An empty expectation means "no expectation", not "must be empty".
    assert local_weights_info(abc_file, DENSENET121, "").sha256 == ABC_SHA256


def test_a_different_hash_is_refused_with_both_hashes(abc_file: Path) -> None:
    expected = "0" * 64
    with pytest.raises(WeightsError) as caught:
        local_weights_info(abc_file, DENSENET121, expected)
    assert str(caught.value) == f"weights file {abc_file} has sha256 {ABC_SHA256}, but {expected} was expected"


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as caught:
        local_weights_info(tmp_path / "gone.pth", DENSENET121)
    assert str(caught.value) == f"weights file {tmp_path / 'gone.pth'} does not exist"
    with pytest.raises(WeightsError, match="does not exist"):
        local_weights_info(tmp_path, DENSENET121)  # a folder is not a weights file


def test_warning_only_for_weights_that_are_not_published() -> None:
    assert PUBLISHED_INFO == WeightsInfo(PUBLISHED_ID, True, None, None)
    info = unpublished_weights_info(DENSENET121, "file x.pth sha256:0123", None)
    assert info == WeightsInfo("file x.pth sha256:0123", False, None, IMAGENET_WARNING)


def test_the_warning_of_a_checkpoint_with_its_own_classes_does_not_speak_of_imagenet() -> None:
    """Labels of its own (or class_0...): whether ImageNet-1k was its training set is beside the point."""
    own_classes = DENSENET121.with_changes(categories=("a", "b"), published_categories=False)
    assert unpublished_weights_info(own_classes, "file x", None).warning == (
        f"These are not torchvision's published {PUBLISHED_ID} weights (file x); "
        "answers are only as good as this checkpoint."
    )


def test_an_architecture_without_published_weights() -> None:
    unpublished = DENSENET121.with_changes(published=None)
    with pytest.raises(WeightsError, match=r"^torchvision publishes no weights for densenet121: pass --weights FILE$"):
        published_weights_info(unpublished)
    assert unpublished_weights_info(unpublished, "file x", None).warning == (
        "These are not published weights (file x); labels are only meaningful if this checkpoint was trained "
        "on ImageNet-1k."
    )
    assert not is_published_sha256("a639ec97" + "0" * 56, unpublished)


def test_the_published_hash_is_the_records_own() -> None:
    """resnet50's published prefix is not densenet121's, and the reverse."""
    resnet50_digest, densenet_digest = "11ad3fa6" + "0" * 56, "a639ec97" + "0" * 56
    assert is_published_sha256(resnet50_digest, RESNET50) and not is_published_sha256(densenet_digest, RESNET50)
    assert is_published_sha256(densenet_digest, DENSENET121) and not is_published_sha256(resnet50_digest, DENSENET121)


def test_a_file_with_another_models_published_hash_is_not_published(
    abc_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("densenet_server.weights.file_sha256", lambda _: "11ad3fa6" + "1" * 56)
    assert local_weights_info(abc_file, RESNET50) == WeightsInfo(
        "ResNet50_Weights.IMAGENET1K_V2", True, "11ad3fa6" + "1" * 56
    )
    assert local_weights_info(abc_file, DENSENET121).published is False


@pytest.mark.parametrize(
    "info",
    [
        PUBLISHED_INFO,
        WeightsInfo(PUBLISHED_ID, True, ABC_SHA256),
        WeightsInfo("file x", False, None),
        unpublished_weights_info(DENSENET121, "file x", ABC_SHA256),
    ],
)
def test_every_kind_of_info_round_trips_through_a_dict(info: WeightsInfo) -> None:
    assert info.to_dict() == {"id": info.id, "published": info.published, "sha256": info.sha256, "warning": info.warning}
    assert WeightsInfo.from_dict(info.to_dict()) == info


def test_the_log_line_warns_only_about_unpublished_weights(caplog: pytest.LogCaptureFixture) -> None:
    unpublished = unpublished_weights_info(DENSENET121, "file x.pth sha256:0123", None)
    with caplog.at_level(logging.INFO, logger="densenet_server.weights"):
        PUBLISHED_INFO.log()
        unpublished.log()
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.INFO, f"weights: {PUBLISHED_ID}"),
        (logging.WARNING, f"weights: {unpublished.warning}"),
    ]
