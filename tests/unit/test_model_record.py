"""The model record: DenseNet-121's built-in one is torchvision's, field by field; records travel as
dictionaries (JSON: an ONNX export's metadata, the engine's model file) unchanged; bad ones say why."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from torchvision.models import DenseNet121_Weights

from densenet_server.model_catalog import torchvision_record
from densenet_server.model_record import (
    DENSENET121,
    SIGMOID,
    SOFTMAX,
    ModelRecord,
    Preprocessing,
    PublishedWeights,
)

PUBLISHED = DenseNet121_Weights.IMAGENET1K_V1
GOOD = DENSENET121.preprocessing


def test_densenet121_is_torchvisions_in_every_field() -> None:
    """The record restates torchvision's facts so that the server runs without torch: they must agree."""
    transform = PUBLISHED.transforms()
    assert (DENSENET121.name, DENSENET121.architecture) == ("densenet121", "densenet121")
    assert DENSENET121.preprocessing == Preprocessing(
        resize_size=transform.resize_size[0],
        crop_size=transform.crop_size[0],
        interpolation=transform.interpolation.value,
        mean=tuple(transform.mean),
        std=tuple(transform.std),
    )
    assert DENSENET121.categories == tuple(PUBLISHED.meta["categories"]) and DENSENET121.num_classes == 1000
    assert DENSENET121.published == PublishedWeights(f"{type(PUBLISHED).__name__}.{PUBLISHED.name}", PUBLISHED.url)
    assert DENSENET121.published.id == "DenseNet121_Weights.IMAGENET1K_V1"
    assert DENSENET121.published.sha256_prefix == "a639ec97"
    assert DENSENET121.key_remap == "densenet"
    assert (DENSENET121.output, DENSENET121.multi_label, DENSENET121.published_categories) == (SOFTMAX, False, True)
    # And the catalog, which reads any model's record from torchvision, makes the same one.
    assert torchvision_record("densenet121") == DENSENET121


def test_the_shapes_follow_the_crop() -> None:
    assert (GOOD.input_shape, GOOD.crop_shape) == ((3, 224, 224), (224, 224, 3))
    crop_240 = Preprocessing(255, 240, "bilinear", GOOD.mean, GOOD.std)
    assert (crop_240.input_shape, crop_240.crop_shape) == ((3, 240, 240), (240, 240, 3))


def test_the_published_hash_prefix_is_the_file_names_last_part() -> None:
    # Only what follows the last dash is the hash: the rest of a file name may hold dashes of its own.
    url = "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth"
    assert PublishedWeights("EfficientNet_B0_Weights.IMAGENET1K_V1", url).sha256_prefix == "7f5810bc"
    assert PublishedWeights("X", "https://example.org/a-b-c-0123456789ab.pth").sha256_prefix == "0123456789ab"


# A fine-tuned multi-label model: another name, its own labels, no published weights, a sigmoid per class.
XRAY = ModelRecord(
    name="xray",
    architecture="densenet121",
    preprocessing=GOOD,
    categories=("Atelectasis", "Cardiomegaly", "Effusion"),
    published=None,
    key_remap="densenet",
    output=SIGMOID,
    threshold=0.3,
    version="2",
    published_categories=False,
)


@pytest.mark.parametrize("record", [DENSENET121, XRAY], ids=["densenet121", "xray"])
def test_a_record_round_trips_through_a_dict_and_json(record: ModelRecord) -> None:
    assert ModelRecord.from_dict(record.to_dict()) == record
    # JSON turns tuples into lists: from_dict makes them tuples again, so the records compare equal.
    travelled = ModelRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert travelled == record
    assert isinstance(travelled.categories, tuple) and isinstance(travelled.preprocessing.mean, tuple)


def test_multi_label_is_the_sigmoid_output() -> None:
    assert XRAY.multi_label and XRAY.num_classes == 3
    assert not DENSENET121.with_changes(threshold=0.2).multi_label


def test_good_records_have_no_problems() -> None:
    assert DENSENET121.problems() == [] and XRAY.problems() == []


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        (
            {"preprocessing": Preprocessing(256, 224, "area", GOOD.mean, GOOD.std)},
            ["interpolation 'area' is not one of nearest, bilinear, bicubic, box, hamming, lanczos"],
        ),
        (
            {"preprocessing": Preprocessing(224, 256, "bilinear", GOOD.mean, GOOD.std)},
            ["crop size 256 must be from 1 to the resize size 224"],
        ),
        (
            {"preprocessing": Preprocessing(256, 0, "bilinear", GOOD.mean, GOOD.std)},
            ["crop size 0 must be from 1 to the resize size 256"],
        ),
        (
            {"preprocessing": Preprocessing(256, 224, "bilinear", GOOD.mean, (0.2, 0.0, 0.2))},
            ["mean and std need 3 values each, std above 0"],
        ),
        ({"categories": ()}, ["a model needs at least one category"]),
        ({"threshold": 1.5}, ["threshold 1.5 must be between 0 and 1"]),
        ({"threshold": 0.0}, ["threshold 0.0 must be between 0 and 1"]),
        ({"threshold": 1.0}, ["threshold 1.0 must be between 0 and 1"]),
        ({"output": "relu"}, ["output 'relu' is not one of softmax, sigmoid"]),
        (
            {"preprocessing": Preprocessing(200, 224, "cubic", GOOD.mean, GOOD.std), "categories": (), "threshold": 2.0},
            [
                "interpolation 'cubic' is not one of nearest, bilinear, bicubic, box, hamming, lanczos",
                "crop size 224 must be from 1 to the resize size 200",
                "threshold 2.0 must be between 0 and 1",
                "a model needs at least one category",
            ],
        ),
    ],
)
def test_problems_say_what_is_wrong(changes: dict[str, object], problems: list[str]) -> None:
    assert DENSENET121.with_changes(**changes).problems() == problems


def test_the_record_needs_neither_torch_nor_torchvision() -> None:
    code = (
        "import sys; from densenet_server.model_record import DENSENET121; "
        "assert len(DENSENET121.categories) == 1000; "
        "print(sorted({'torch', 'torchvision'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
