"""What the server says about each model it serves (GET /'s `models`, the v2 repository index, the OpenAPI
document): from the settings while a model loads, from its record once it is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model_record import ModelRecord
from .service import InferenceService


@dataclass(frozen=True)
class ModelSummary:
    name: str
    architecture: str
    multi_label: bool
    loaded: bool
    ready: bool  # loaded, and the server is not shutting down
    version: str
    # None while the model loads: a checkpoint's classifier decides the count, and it is not read yet.
    classes: int | None = None
    backend: str | None = None
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """GET /'s entry: what runs the model only once it is loaded."""
        entry: dict[str, Any] = {
            "name": self.name,
            "architecture": self.architecture,
            "classes": self.classes,
            "multi_label": self.multi_label,
            "ready": self.ready,
        }
        if self.loaded:
            entry |= {"backend": self.backend, "device": self.device}
        return entry


def summarize(service: InferenceService) -> ModelSummary:
    if not service.loaded:
        settings = service.settings
        # The version is the record's; until the record is read, its default.
        return ModelSummary(service.name, settings.model, settings.multi_label, False, False, ModelRecord.version)
    info = service.info
    record = info.record
    return ModelSummary(
        record.name, record.architecture, record.multi_label, True, service.ready, record.version,
        record.num_classes, info.backend, info.device,
    )
