"""A fine-tuned DenseNet-121 with classes of its own (issue 11): 14 outputs, as chest X-ray models have,
named by a labels file; one softmax, or with --multi-label a sigmoid per class and every class at or above
--threshold. Its answers equal torchvision's reference (the same module in fp32, then the softmax or the
sigmoid) within 1e-4 on both CPU backends, name its labels, and never pass its weights off as published.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
import torch
from support.random_weights import write_checkpoint
from support.reference import output_probabilities, parity_photos, reference_logits
from torch import nn

from densenet_server.config import Settings
from densenet_server.service import InferenceService
from densenet_server.weights import WeightsError

# ChestX-ray14's findings.
LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
THRESHOLD = 0.3
PHOTOS = parity_photos()
BACKENDS = ["onnxruntime", "torch"]


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    path = tmp_path_factory.mktemp("weights") / "xray-densenet121.pth"
    return path, write_checkpoint(path, PHOTOS, seed=14, num_classes=len(LABELS))


@pytest.fixture(scope="module")
def logits(fine_tuned: tuple[Path, nn.Module]) -> torch.Tensor:
    """torchvision's reference: the fine-tuned module in fp32 on its reference transform."""
    return reference_logits(fine_tuned[1], PHOTOS)


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def settings(fine_tuned: tuple[Path, nn.Module], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # One export cache for the module: the export is made once and serves every configuration below.
    return Settings(weights=fine_tuned[0], cache_dir=tmp_path_factory.mktemp("exports"), threads=2)


@contextlib.contextmanager
def loaded(settings: Settings) -> Iterator[InferenceService]:
    service = InferenceService(settings)
    service.load()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def softmax_service(settings: Settings, labels_file: Path, backend: str) -> Iterator[InferenceService]:
    with loaded(dataclasses.replace(settings, labels=labels_file, model_name="xray", backend=backend)) as service:
        yield service


@pytest.fixture(scope="module")
def multi_label_service(settings: Settings, labels_file: Path, backend: str) -> Iterator[InferenceService]:
    multi_label = dataclasses.replace(
        settings, labels=labels_file, model_name="xray", backend=backend, multi_label=True, threshold=THRESHOLD
    )
    with loaded(multi_label) as service:
        yield service


def served_probabilities(service: InferenceService) -> np.ndarray:
    return np.stack(service.image_probabilities([photo.read_bytes() for photo in PHOTOS]))


def answers(service: InferenceService) -> list[dict[str, Any]]:
    # top_k beyond the class count: every class, most probable first.
    return [service.classify(photo.read_bytes(), top_k=20) for photo in PHOTOS]


def assert_equal_probabilities(served: np.ndarray, expected: np.ndarray) -> None:
    assert served.shape == expected.shape == (len(PHOTOS), len(LABELS))
    assert np.abs(served - expected).max() <= PARITY_TOLERANCE
    assert np.array_equal(served.argmax(axis=1), expected.argmax(axis=1))


def assert_ranked_like(answer: dict[str, Any], expected: np.ndarray) -> None:
    """The answer's class and top_k (all 14) are the reference's, most probable first, named by the labels."""
    best = int(expected.argmax())
    assert (answer["index"], answer["class"]) == (best, LABELS[best])
    assert answer["probability"] == pytest.approx(expected[best], abs=PARITY_TOLERANCE)
    assert [entry["probability"] for entry in answer["top_k"]] == pytest.approx(np.sort(expected)[::-1], abs=PARITY_TOLERANCE)
    for entry in answer["top_k"]:
        assert entry["label"] == LABELS[entry["index"]]
        assert entry["probability"] == pytest.approx(expected[entry["index"]], abs=PARITY_TOLERANCE)


def assert_honest_about_the_weights(answer: dict[str, Any], backend: str) -> None:
    assert (answer["model"], answer["backend"], answer["precision"]) == ("xray", backend, "fp32")
    assert answer["weights_published"] is False
    assert answer["warning"] == (
        f"These are not torchvision's published DenseNet121_Weights.IMAGENET1K_V1 weights ({answer['weights']}); "
        "answers are only as good as this checkpoint."
    )


def test_softmax_answers_are_torchvisions(softmax_service: InferenceService, logits: torch.Tensor, backend: str) -> None:
    expected = output_probabilities(logits)
    assert_equal_probabilities(served_probabilities(softmax_service), expected)
    for answer, row in zip(answers(softmax_service), expected):
        assert_ranked_like(answer, row)
        assert_honest_about_the_weights(answer, backend)
        assert "labels" not in answer and "threshold" not in answer


def test_multi_label_answers_are_torchvisions(
    multi_label_service: InferenceService, logits: torch.Tensor, backend: str
) -> None:
    expected = output_probabilities(logits, multi_label=True)
    assert_equal_probabilities(served_probabilities(multi_label_service), expected)
    served_answers = answers(multi_label_service)
    for answer, row in zip(served_answers, expected):
        assert_ranked_like(answer, row)
        assert_honest_about_the_weights(answer, backend)
        assert answer["threshold"] == THRESHOLD
        # Every class at or above the threshold, most probable first.
        chosen = [index for index in np.argsort(-row, kind="stable") if row[index] >= THRESHOLD]
        assert [(entry["index"], entry["label"]) for entry in answer["labels"]] == [(i, LABELS[i]) for i in chosen]
        for entry in answer["labels"]:
            assert entry["probability"] == pytest.approx(row[entry["index"]], abs=PARITY_TOLERANCE)
    # The threshold chooses: neither no class nor every class for all the photos.
    assert any(0 < len(answer["labels"]) < len(LABELS) for answer in served_answers)


def test_without_a_labels_file_the_classes_are_numbered(settings: Settings, logits: torch.Tensor) -> None:
    expected = output_probabilities(logits)[0]
    with loaded(dataclasses.replace(settings, backend="torch")) as service:
        assert service.info.categories == tuple(f"class_{index}" for index in range(len(LABELS)))
        answer = service.classify(PHOTOS[0].read_bytes(), top_k=3)
    assert answer["class"] == f"class_{int(expected.argmax())}"
    assert answer["model"] == "densenet121"
    assert answer["warning"].endswith("; answers are only as good as this checkpoint.")


def test_a_labels_file_that_does_not_fit_fails_at_load(settings: Settings, tmp_path: Path) -> None:
    labels = tmp_path / "thirteen.txt"
    labels.write_text("\n".join(LABELS[:13]) + "\n", encoding="utf-8")
    expected = f"the labels file {labels} names 13 classes, but the model has 14 outputs"
    for backend in BACKENDS:
        with pytest.raises(WeightsError, match=f"^{re.escape(expected)}$"):
            InferenceService(dataclasses.replace(settings, labels=labels, backend=backend)).load()


def test_a_checkpoint_of_another_architecture_fails_at_load(settings: Settings) -> None:
    weights = settings.weights
    with pytest.raises(WeightsError, match=f"^{re.escape(f'{weights} is not a resnet50 state dict: it has no fc.weight')}$"):
        InferenceService(dataclasses.replace(settings, model="resnet50")).load()
    # The same head's name, another network: PyTorch's own list of what does not fit follows.
    with pytest.raises(WeightsError, match=rf"^{re.escape(f'{weights} is not a densenet169 state dict: ')}Error\(s\) in loading"):
        InferenceService(dataclasses.replace(settings, model="densenet169")).load()
