"""The catalog: any torchvision classifier's record from its weights metadata; a checkpoint's class count,
a labels file and multi-label outputs applied to it; unknown models and bad labels refused with reasons."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from torchvision.models import get_model_weights

from densenet_server.model_catalog import (
    base_record,
    classification_models,
    read_labels,
    served_record,
    torchvision_record,
    with_class_count,
)
from densenet_server.model_record import DENSENET121, SIGMOID, SOFTMAX, Preprocessing, PublishedWeights
from densenet_server.weights import WeightsError, is_published_sha256

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FOURTEEN = tuple(f"finding {index}" for index in range(14))


@pytest.mark.parametrize(
    ("architecture", "preprocessing", "published"),
    [
        # resize and crop sizes unlike DenseNet's
        (
            "resnet50",
            Preprocessing(232, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
            PublishedWeights(
                "ResNet50_Weights.IMAGENET1K_V2", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
            ),
        ),
        # bicubic
        (
            "efficientnet_b0",
            Preprocessing(256, 224, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
            PublishedWeights(
                "EfficientNet_B0_Weights.IMAGENET1K_V1",
                "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth",
            ),
        ),
        # a crop other than 224, from an odd resize
        (
            "efficientnet_b1",
            Preprocessing(255, 240, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
            PublishedWeights(
                "EfficientNet_B1_Weights.IMAGENET1K_V2", "https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth"
            ),
        ),
    ],
)
def test_a_torchvision_record_is_its_weights_metadata(
    architecture: str, preprocessing: Preprocessing, published: PublishedWeights
) -> None:
    record = torchvision_record(architecture)
    assert (record.name, record.architecture) == (architecture, architecture)
    assert record.preprocessing == preprocessing
    assert record.published == published
    assert record.categories == tuple(get_model_weights(architecture).DEFAULT.meta["categories"])
    assert record.categories == DENSENET121.categories  # ImageNet-1k, in the same order
    assert (record.output, record.key_remap, record.published_categories) == (SOFTMAX, None, True)
    assert base_record(architecture) == record


def test_the_default_model_is_built_in_and_needs_no_torchvision() -> None:
    assert base_record("densenet121") is DENSENET121
    code = (
        "import sys; from densenet_server.model_catalog import base_record; base_record('densenet121'); "
        "print(sorted({'torch', 'torchvision'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_classifiers_are_torchvisions_image_classifiers_only() -> None:
    models = classification_models()
    assert {"densenet121", "resnet50", "efficientnet_b7", "convnext_tiny", "vit_b_16", "mobilenet_v3_large"} <= set(models)
    # detection, segmentation, video, optical flow and quantized models are not image classifiers
    assert not {"fasterrcnn_resnet50_fpn", "deeplabv3_resnet50", "r3d_18", "raft_large", "quantized_resnet50"} & set(models)


def test_every_classifier_has_a_record() -> None:
    """Each of torchvision's classifiers can be served: its transform is one the Pillow path reproduces."""
    for architecture in classification_models():
        record = torchvision_record(architecture)
        assert record.problems() == [] and record.num_classes == 1000, architecture


@pytest.mark.parametrize("architecture", ["resnet5000", "fasterrcnn_resnet50_fpn"])
def test_an_unknown_model_is_refused_with_the_choices(architecture: str) -> None:
    choices = ", ".join(classification_models())
    expected = f"unknown model '{architecture}': --model takes one of torchvision's image classifiers ({choices})"
    with pytest.raises(WeightsError, match=f"^{re.escape(expected)}$"):
        torchvision_record(architecture)
    with pytest.raises(WeightsError, match=f"^{re.escape(expected)}$"):
        base_record(architecture)


def test_the_published_hash_is_per_model() -> None:
    resnet50 = torchvision_record("resnet50")
    assert is_published_sha256("11ad3fa6" + "0" * 56, resnet50)
    assert not is_published_sha256("a639ec97" + "0" * 56, resnet50)
    assert not is_published_sha256("11ad3fa6" + "0" * 56, DENSENET121)


# --- a checkpoint's class count ----------------------------------------------------------------------


def test_the_published_class_count_keeps_the_published_categories() -> None:
    assert with_class_count(DENSENET121, 1000) is DENSENET121


def test_another_class_count_names_the_classes_by_index() -> None:
    counted = with_class_count(DENSENET121, 14)
    assert counted.categories == tuple(f"class_{index}" for index in range(14))
    assert counted.published_categories is False
    # Everything else is the architecture's: preprocessing, published weights (for the hash), the key remap.
    assert counted.with_changes(categories=DENSENET121.categories, published_categories=True) == DENSENET121


# --- labels files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("cat\ndog\nbird\n", ("cat", "dog", "bird")),
        ("cat\ndog\nbird", ("cat", "dog", "bird")),  # no newline at the end
        ("cat\r\n dog \n\n\n", ("cat", "dog")),  # blank lines at the end; spaces and CR around a label
        ("great white shark\n", ("great white shark",)),
        ('["cat", "dog", "a, b"]', ("cat", "dog", "a, b")),
        ('  \n["Effusion",\n "Pleural thickening"]\n', ("Effusion", "Pleural thickening")),
    ],
    ids=["lines", "no-final-newline", "blank-lines-at-the-end", "spaces-inside", "json", "json-spread"],
)
def test_labels_files(tmp_path: Path, text: str, labels: tuple[str, ...]) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(text, encoding="utf-8")
    assert read_labels(path) == labels


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cat\n\ndog\n", "has an empty label"),
        ("", "has an empty label"),
        ('["cat", ""]', "has an empty label"),
        ("[]", "has an empty label"),
        ('["cat", "dog"', "is not a valid JSON list: Expecting ',' delimiter: line 1 column 14 (char 13)"),
        ('["cat", 3]', "must be a JSON list of strings"),
    ],
    ids=["blank-line-inside", "empty-file", "empty-json-label", "empty-json-list", "bad-json", "json-number"],
)
def test_bad_labels_files_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WeightsError, match=f"^{re.escape(f'the labels file {path} {problem}')}$"):
        read_labels(path)


def test_a_missing_or_undecodable_labels_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "gone.txt"
    with pytest.raises(WeightsError, match=rf"^cannot read the labels file {missing}: \[Errno 2\] No such file"):
        read_labels(missing)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(WeightsError, match=rf"^cannot read the labels file {latin1}: 'utf-8' codec can't decode"):
        read_labels(latin1)


# --- the record as served ----------------------------------------------------------------------------------


@pytest.fixture
def fourteen_labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(FOURTEEN) + "\n", encoding="utf-8")
    return path


def test_served_as_is_by_default() -> None:
    assert served_record(DENSENET121) == DENSENET121


def test_the_served_name() -> None:
    assert served_record(DENSENET121, name="mine") == DENSENET121.with_changes(name="mine")


def test_labels_name_the_checkpoints_classes(fourteen_labels: Path) -> None:
    served = served_record(with_class_count(DENSENET121, 14), name="xray", labels=fourteen_labels)
    assert (served.name, served.architecture, served.categories) == ("xray", "densenet121", FOURTEEN)
    assert served.published_categories is False and served.output == SOFTMAX


def test_labels_may_rename_the_published_classes(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(repr([f"c{index}" for index in range(1000)]).replace("'", '"'), encoding="utf-8")
    served = served_record(DENSENET121, labels=path)
    assert served.categories[:2] == ("c0", "c1") and served.published_categories is False


def test_a_labels_count_mismatch_is_refused(fourteen_labels: Path) -> None:
    expected = f"the labels file {fourteen_labels} names 14 classes, but the model has 13 outputs"
    with pytest.raises(WeightsError, match=f"^{re.escape(expected)}$"):
        served_record(with_class_count(DENSENET121, 13), labels=fourteen_labels)


def test_multi_label_outputs_and_threshold(fourteen_labels: Path) -> None:
    served = served_record(with_class_count(DENSENET121, 14), labels=fourteen_labels, multi_label=True, threshold=0.3)
    assert (served.output, served.multi_label, served.threshold) == (SIGMOID, True, 0.3)
    assert served_record(DENSENET121, multi_label=True).threshold == 0.5  # the default
    # The threshold is kept without --multi-label, where nothing reads it; the outputs stay a softmax.
    assert served_record(DENSENET121, threshold=0.3).output == SOFTMAX


def test_a_bad_served_record_is_refused() -> None:
    with pytest.raises(WeightsError, match=r"^model mine cannot be served: threshold 1.5 must be between 0 and 1$"):
        served_record(DENSENET121, name="mine", multi_label=True, threshold=1.5)
