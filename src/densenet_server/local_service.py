"""The service in this process, for what classifies many images without a server: the classify and
evaluate commands, the benchmark's agreement figures, the tests' parity checks.

They all run the routes' own call, InferenceService.image_probabilities (decoding in parallel, the batcher
told of the images on their way, one submit, each unreadable image's ImageError in its place), on an
InferenceService whose engine is the in-process LocalEngine, fed one batch's worth of images at a time
(--max-batch-size), so that a folder of thousands of photos is never decoded at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from .backends import LoadedBackend
from .config import Settings
from .decoding import ImageError
from .engine.base import as_pixels
from .engine.local import LocalEngine
from .service import InferenceService

Item = TypeVar("Item")


@contextlib.contextmanager
def loaded_service(settings: Settings, loaded: LoadedBackend | None = None) -> Iterator[InferenceService]:
    """The service ``settings`` describe, loaded and warm, on a LocalEngine; stopped on leaving.
    ``loaded``: serve this already loaded backend instead (LocalEngine)."""
    service = InferenceService(settings, engine=LocalEngine(settings, loaded=loaded))
    service.load()
    try:
        yield service
    finally:
        service.stop()


def _batches(service: InferenceService, items: Sequence[Item]) -> Iterator[Sequence[Item]]:
    size = service.settings.effective_max_batch_size()
    for start in range(0, len(items), size):
        yield items[start : start + size]


def file_probabilities(
    service: InferenceService, files: Sequence[Path]
) -> Iterator[tuple[Path, np.ndarray | OSError | ImageError]]:
    """Each file's probabilities [classes], or why it has none (unreadable, not an image), in order."""
    for chunk in _batches(service, files):
        read = [_read(path) for path in chunk]
        readable = [data for data in read if isinstance(data, bytes)]
        outcomes = iter(service.image_probabilities(readable) if readable else [])
        for path, data in zip(chunk, read):
            yield path, next(outcomes) if isinstance(data, bytes) else data


def probabilities_of(service: InferenceService, images: Sequence[bytes]) -> np.ndarray:
    """The probabilities [N, classes] of encoded images that must all be readable (raises the first
    ImageError)."""
    rows = [_or_raise(row) for chunk in _batches(service, images) for row in service.image_probabilities(chunk)]
    return np.stack(rows)


def model_inputs(service: InferenceService, images: Sequence[bytes]) -> np.ndarray:
    """The float32 pixels [N, 3, crop, crop] the service gives its model for these images (raises the first
    ImageError): what a raw measurement of the backend feeds it."""
    crops = np.stack([_or_raise(crop) for crop in service.prepare_many(images)])
    return as_pixels(crops, service.info.record.preprocessing)


def _read(path: Path) -> bytes | OSError:
    try:
        return path.read_bytes()
    except OSError as exc:
        return exc


def _or_raise(outcome: np.ndarray | ImageError) -> np.ndarray:
    if isinstance(outcome, ImageError):
        raise outcome
    return outcome
