"""local_service.py: what the commands and tools run through the service, one batch's worth at a time, with
each file's error in its place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from support.tolerances import PARITY_TOLERANCE
from support.paths import REPO_IMAGES
from support.reference import reference_probabilities
from torch import nn

from densenet_server.backends import load_backend
from densenet_server.config import Settings
from densenet_server.decoding import ImageError, decode_image
from densenet_server.engine import local
from densenet_server.local_service import file_probabilities, loaded_service, model_inputs, probabilities_of
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import preprocess
from densenet_server.service import InferenceService

PHOTOS = sorted(REPO_IMAGES.glob("*.jpg"))


def test_file_probabilities_in_order_with_each_files_error_in_place(
    inference_service: InferenceService, reference_model: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a JPEG")
    files = [PHOTOS[0], tmp_path / "missing.jpg", broken, PHOTOS[1], PHOTOS[2], PHOTOS[3]]
    submitted: list[int] = []
    image_probabilities = inference_service.image_probabilities

    def recording(images: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        submitted.append(len(images))
        return image_probabilities(images)

    monkeypatch.setattr(inference_service, "image_probabilities", recording)
    outcomes = list(file_probabilities(inference_service, files))
    assert [path for path, _ in outcomes] == files
    # One call per batch's worth of files (4 on the CPU), with the files that could be read.
    assert inference_service.settings.effective_max_batch_size() == 4 and submitted == [3, 2]
    assert isinstance(outcomes[1][1], FileNotFoundError)
    assert isinstance(outcomes[2][1], ImageError)
    assert str(outcomes[2][1]) == "the data is not an image in a format this server can read"
    served = np.stack([outcomes[n][1] for n in (0, 3, 4, 5)])  # type: ignore[misc]
    assert np.abs(served - reference_probabilities(reference_model, PHOTOS)).max() < PARITY_TOLERANCE


def test_probabilities_of_raises_the_first_unreadable_image(inference_service: InferenceService) -> None:
    with pytest.raises(ImageError, match="the data is not an image in a format this server can read"):
        probabilities_of(inference_service, [PHOTOS[0].read_bytes(), b"not an image"])


def test_model_inputs_are_the_reference_transforms_pixels(inference_service: InferenceService) -> None:
    inputs = model_inputs(inference_service, [photo.read_bytes() for photo in PHOTOS])
    limit = Settings().max_image_pixels
    expected = np.stack([preprocess(decode_image(p.read_bytes(), limit), DENSENET121.preprocessing) for p in PHOTOS])
    assert inputs.dtype == np.float32 and np.array_equal(inputs, expected)


def test_loaded_service_serves_a_backend_already_loaded_and_stops_on_leaving(
    checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(weights=checkpoint_path, threads=1)
    loaded = load_backend(settings)

    def no_second_load(_: Settings) -> None:
        raise AssertionError("the engine loaded the model again")

    monkeypatch.setattr(local, "load_backend", no_second_load)
    with loaded_service(settings, loaded) as service:
        assert service.ready and service.info.weights == loaded.weights
        assert probabilities_of(service, [PHOTOS[0].read_bytes()]).shape == (1, 1000)
    assert service.draining, "stopped"
