"""Shared fixtures: a seeded random checkpoint, a folder of test images, the real server, and the same
app in-process (for route tests where no process boundary is under test)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from flask.testing import FlaskClient
from torch import nn

from support.keyed_server import FRONTS, KEY, wait_every_front_ready, write_keys
from support.paths import REPO_IMAGES, SHARED_LABELLED
from support.random_weights import write_checkpoint
from support.reference import reference_probabilities
from support.server_process import ServerProcess
from support.several_models import SecondModel, write_models_file, write_second_model

from densenet_server.config import Settings
from densenet_server.service import InferenceService


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """(path of the legacy-format checkpoint, the same model in memory, for reference pipelines)."""
    path = tmp_path_factory.mktemp("weights") / "densenet121-random.pth"
    model = write_checkpoint(path)
    return path, model


@pytest.fixture(scope="session")
def checkpoint_path(checkpoint: tuple[Path, nn.Module]) -> Path:
    return checkpoint[0]


@pytest.fixture(scope="session")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> SecondModel:
    """A second model to serve beside DenseNet-121: ResNet-18, 14 labelled classes, multi-label."""
    return write_second_model(tmp_path_factory.mktemp("second-model"))


@pytest.fixture(scope="session")
def reference_model(checkpoint: tuple[Path, nn.Module]) -> nn.Module:
    return checkpoint[1]


def labelled_photos() -> list[Path]:
    """The 200 labelled photos of ../shared when present, else the repo's own example photos."""
    photos = sorted(SHARED_LABELLED.glob("*.png"))
    return photos or sorted(REPO_IMAGES.glob("*.jpg"))


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    return labelled_photos()


@pytest.fixture(scope="session")
def labelled_reference(reference_model: nn.Module, photos: list[Path]) -> np.ndarray:
    """torchvision's pipeline on every labelled photo, in fp32 on the CPU: [photos, 1000] probabilities.
    Computed once for the suite (about 30 s on 2 cores for 200 photos)."""
    return reference_probabilities(reference_model, photos)


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory, photos: list[Path]) -> Path:
    """The served folder: example photos, the labelled photos, a sub-folder, a broken file, links."""
    root = tmp_path_factory.mktemp("served")
    folder = root / "images"
    folder.mkdir()
    for photo in sorted(REPO_IMAGES.glob("*.jpg")) + photos:
        shutil.copy(photo, folder / photo.name)
    (folder / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(REPO_IMAGES / "cat.jpg", folder / "nested" / "deeper" / "cat copy é.jpg")
    (folder / "not-an-image.jpg").write_text("this is text, not a JPEG")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((REPO_IMAGES / "cat.jpg").read_bytes()[:2000])
    secret = root / "secret.jpg"
    shutil.copy(REPO_IMAGES / "cat.jpg", secret)
    (folder / "link-out.jpg").symlink_to(secret)
    (folder / "link-in.jpg").symlink_to(folder / "cat.jpg")
    (folder / "dir-link-out").symlink_to(root)
    return folder


@pytest.fixture(scope="session")
def server(checkpoint_path: Path, images_dir: Path) -> Iterator[ServerProcess]:
    """The real `densenet-server serve` on 127.0.0.1 and a free port, ready to answer."""
    with ServerProcess.start(["--weights", str(checkpoint_path), "--images-dir", str(images_dir)]) as process:
        yield process


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The keyed server's keys file, holding support.keyed_server.KEY (a test that rotates it restores it)."""
    return write_keys(tmp_path_factory.mktemp("keys") / "api-keys", KEY)


@pytest.fixture(scope="session")
def keyed_server(checkpoint_path: Path, images_dir: Path, keys_file: Path) -> Iterator[ServerProcess]:
    """The real server with --api-keys-file and two fronts, every front ready."""
    args = ["--weights", str(checkpoint_path), "--images-dir", str(images_dir), "--api-keys-file", str(keys_file),
            "--workers", str(FRONTS)]
    with ServerProcess.start(args) as process:
        wait_every_front_ready(process)
        yield process


@pytest.fixture(scope="session")
def several_models_server(
    checkpoint_path: Path, second_model: SecondModel, images_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The real server with a models file of two models: the DenseNet-121 checkpoint as `densenet121` (the
    default) and the multi-label ResNet-18 as `xray`; ready once both are loaded."""
    models_file = write_models_file(tmp_path_factory.mktemp("models-file") / "models.toml", checkpoint_path, second_model)
    with ServerProcess.start(["--models-file", str(models_file), "--images-dir", str(images_dir)]) as process:
        yield process


@pytest.fixture(scope="session")
def inference_service(checkpoint_path: Path, images_dir: Path, _export_cache: Path) -> Iterator[InferenceService]:
    """The service the real server runs, loaded here synchronously: same weights, folder and defaults."""
    service = InferenceService(Settings(weights=checkpoint_path, images_dir=images_dir, cache_dir=_export_cache))
    service.load()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def app_client(inference_service: InferenceService) -> FlaskClient:
    """Flask's test client on the app of a loaded service: the routes without gunicorn or a socket, so
    request validation is tested fast and a failure points at the route, not at the process."""
    from densenet_server.app import create_app  # here, so that the model path's unit tests never import the routes

    return create_app(inference_service.settings, inference_service).test_client()


@pytest.fixture(autouse=True, scope="session")
def _export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every server and classifier of the session shares one ONNX export cache, never the user's own."""
    cache = tmp_path_factory.mktemp("export-cache")
    previous = os.environ.get("DENSENET_CACHE_DIR")
    os.environ["DENSENET_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        del os.environ["DENSENET_CACHE_DIR"]
    else:
        os.environ["DENSENET_CACHE_DIR"] = previous


@pytest.fixture(autouse=True, scope="session")
def _torch_threads() -> None:
    torch.set_num_threads(2)
