"""weights.py beyond test_model.py: what the answers and logs say about the weights, and the checks on a
local file. Torch-free, like the module."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from densenet_server.weights import (
    PUBLISHED_ID,
    PUBLISHED_WEIGHTS_INFO,
    WeightsError,
    WeightsInfo,
    local_weights_info,
)

# SHA-256 of b"abc" (FIPS 180-2), computed independently of the code under test.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture
def abc_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.pth"
    path.write_bytes(b"abc")
    return path


def test_a_local_file_is_named_by_its_file_name_and_hash(abc_file: Path) -> None:
    assert local_weights_info(abc_file) == WeightsInfo(f"file mine.pth sha256:{ABC_SHA256[:16]}", False, ABC_SHA256)


def test_an_empty_file_has_the_empty_digest(tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    assert local_weights_info(path).sha256 == EMPTY_SHA256


def test_the_expected_hash_is_compared_case_and_space_insensitively(abc_file: Path) -> None:
    assert local_weights_info(abc_file, f"  {ABC_SHA256.upper()}\n").sha256 == ABC_SHA256
    # An empty expectation means "no expectation", not "must be empty".
    assert local_weights_info(abc_file, "").sha256 == ABC_SHA256


def test_a_different_hash_is_refused_with_both_hashes(abc_file: Path) -> None:
    expected = "0" * 64
    with pytest.raises(WeightsError) as caught:
        local_weights_info(abc_file, expected)
    assert str(caught.value) == f"weights file {abc_file} has sha256 {ABC_SHA256}, but {expected} was expected"


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as caught:
        local_weights_info(tmp_path / "gone.pth")
    assert str(caught.value) == f"weights file {tmp_path / 'gone.pth'} does not exist"
    with pytest.raises(WeightsError, match="does not exist"):
        local_weights_info(tmp_path)  # a folder is not a weights file


def test_warning_only_for_weights_that_are_not_published() -> None:
    assert PUBLISHED_WEIGHTS_INFO.warning is None
    info = WeightsInfo("file x.pth sha256:0123", False, None)
    assert info.warning == (
        f"These are not torchvision's published {PUBLISHED_ID} weights (file x.pth sha256:0123); "
        "labels are only meaningful if this checkpoint was trained on ImageNet-1k."
    )


@pytest.mark.parametrize(
    "info",
    [PUBLISHED_WEIGHTS_INFO, WeightsInfo(PUBLISHED_ID, True, ABC_SHA256), WeightsInfo("file x", False, None)],
)
def test_every_kind_of_info_round_trips_through_a_dict(info: WeightsInfo) -> None:
    assert info.to_dict() == {"id": info.id, "published": info.published, "sha256": info.sha256}
    assert WeightsInfo.from_dict(info.to_dict()) == info


def test_the_log_line_warns_only_about_unpublished_weights(caplog: pytest.LogCaptureFixture) -> None:
    unpublished = WeightsInfo("file x.pth sha256:0123", False, None)
    with caplog.at_level(logging.INFO, logger="densenet_server.weights"):
        PUBLISHED_WEIGHTS_INFO.log()
        unpublished.log()
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.INFO, f"weights: {PUBLISHED_ID}"),
        (logging.WARNING, f"weights: {unpublished.warning}"),
    ]
