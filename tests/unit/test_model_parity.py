"""fp32 parity with torchvision's own pipeline, architecture by architecture (issue 11).

The project's side is the service's answer path: decoding, the record's Pillow + NumPy preprocessing, the
ONNX export (verified on the way) or the torch module, the record's softmax, the answer. torchvision's side
is what its documentation does: ``get_model_weights(arch).DEFAULT.transforms()`` on the PIL image, the same
module in fp32, a softmax. The weights are a seeded random checkpoint made here (tests/support/
random_weights.py): the real ones cannot be downloaded, and parity needs only the same weights on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from support.random_weights import write_checkpoint
from support.reference import parity_photos, reference_probabilities
from torchvision.models import get_model_weights

from densenet_server.config import Settings
from densenet_server.service import InferenceService

ARCHITECTURES = [
    "densenet121",
    "resnet50",  # resize 232 -> crop 224
    "efficientnet_b0",  # bicubic
    "efficientnet_b1",  # resize 255 -> crop 240
    "mobilenet_v3_large",  # hard-swish, squeeze-and-excitation
    "regnet_y_400mf",
    "convnext_tiny",  # LayerNorm, no BatchNorm; resize 236
]
BACKENDS = ["onnxruntime", "torch"]
TOP_K = 5
PHOTOS = parity_photos()


@dataclass(frozen=True)
class Reference:
    architecture: str
    checkpoint: Path
    probabilities: np.ndarray  # [photos, classes]: torchvision's pipeline on PHOTOS
    categories: tuple[str, ...]  # the published weights' own
    published_id: str


@pytest.fixture(scope="module", params=ARCHITECTURES)
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    architecture: str = request.param
    checkpoint = tmp_path_factory.mktemp("weights") / f"{architecture}-random.pth"
    # Calibrated on the photos compared, so that each of them gets a peaked answer of its own.
    model = write_checkpoint(checkpoint, PHOTOS, architecture=architecture)
    weights = get_model_weights(architecture).DEFAULT
    return Reference(
        architecture,
        checkpoint,
        reference_probabilities(model, PHOTOS, architecture=architecture),
        tuple(weights.meta["categories"]),
        f"{type(weights).__name__}.{weights.name}",
    )


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, reference: Reference, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InferenceService]:
    settings = Settings(
        model=reference.architecture,
        weights=reference.checkpoint,
        backend=request.param,
        cache_dir=tmp_path_factory.mktemp("exports"),
        threads=2,
    )
    service = InferenceService(settings)
    service.load()
    yield service
    service.stop()


def test_the_probabilities_are_torchvisions(service: InferenceService, reference: Reference) -> None:
    served = np.stack(service.image_probabilities([photo.read_bytes() for photo in PHOTOS]))
    assert served.shape == reference.probabilities.shape
    difference = np.abs(served - reference.probabilities).max()
    assert difference <= PARITY_TOLERANCE, f"{reference.architecture} on {service.settings.backend}: {difference:.2e}"
    assert np.array_equal(served.argmax(axis=1), reference.probabilities.argmax(axis=1))


def test_the_answers_are_torchvisions(service: InferenceService, reference: Reference) -> None:
    for photo, expected in zip(PHOTOS, reference.probabilities):
        answer = service.classify(photo.read_bytes(), TOP_K)
        best = int(expected.argmax())
        assert (answer["index"], answer["class"]) == (best, reference.categories[best]), photo.name
        assert answer["probability"] == pytest.approx(expected[best], abs=PARITY_TOLERANCE)
        # The k most probable, in order: each entry is its class's reference probability.
        most_probable = np.sort(expected)[::-1][:TOP_K]
        assert [entry["probability"] for entry in answer["top_k"]] == pytest.approx(most_probable, abs=PARITY_TOLERANCE)
        for entry in answer["top_k"]:
            assert entry["label"] == reference.categories[entry["index"]]
            assert entry["probability"] == pytest.approx(expected[entry["index"]], abs=PARITY_TOLERANCE)


def test_the_answer_names_the_model_served(service: InferenceService, reference: Reference) -> None:
    answer = service.classify(PHOTOS[0].read_bytes(), TOP_K)
    assert (answer["model"], answer["backend"], answer["precision"], answer["device"]) == (
        reference.architecture, service.settings.backend, "fp32", "cpu"
    )
    assert answer["weights_published"] is False
    assert answer["warning"] == (
        f"These are not torchvision's published {reference.published_id} weights ({answer['weights']}); "
        "labels are only meaningful if this checkpoint was trained on ImageNet-1k."
    )
    assert "labels" not in answer and "threshold" not in answer  # softmax outputs
