"""Several models in one server: the TOML models file (--models-file) read into one Settings per model.

    [models.densenet121]            # the first table is the default model

    [models.xray]
    model = "densenet121"           # torchvision's architecture (default: the table's name)
    weights = "xray-densenet121.pth"  # relative paths are relative to this file
    labels = "xray-labels.txt"
    multi_label = true
    threshold = 0.4
    max_batch_size = 8

Each table may set the per-model settings (the model, its weights and labels, its outputs, its backend and
batching); everything else (port, limits, threads unless a table sets them...) is the server's.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from .config import PER_MODEL_FLAGS, Settings, validate

# What a table may set: the model's own settings, and how it is run.
MODEL_KEYS = (
    *PER_MODEL_FLAGS,
    "backend", "precision", "threads", "parallel_passes", "jpeg_draft",
    "max_batch_size", "max_batch_wait_ms", "max_queue_images",
)
_PATH_KEYS = ("weights", "labels", "onnx_model")
# A served name goes into URLs (/v2/models/<name>, ?model=) and metric labels.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ModelsFileError(ValueError):
    """The models file cannot be read, or describes models this server cannot serve."""


def model_settings(settings: Settings) -> list[Settings]:
    """One Settings per served model, the default first: ``settings`` itself without a models file."""
    if settings.models_file is None:
        return [settings]
    path = settings.models_file
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelsFileError(f"cannot read the models file {path}: {exc}") from exc
    tables = document.get("models")
    unknown = sorted(set(document) - {"models"})
    if unknown or not isinstance(tables, dict) or not tables:
        raise ModelsFileError(f"the models file {path} must hold [models.<name>] tables and nothing else")
    return [_one_model(settings, path, name, table) for name, table in tables.items()]


def _one_model(settings: Settings, path: Path, name: str, table: Any) -> Settings:
    where = f"{path}, [models.{name}]"
    if not NAME_PATTERN.match(name):
        raise ModelsFileError(f"{where}: a model's name is letters, digits, '_', '.' or '-' (at most 64)")
    if not isinstance(table, dict):
        raise ModelsFileError(f"{where}: expected a table")
    unknown = sorted(set(table) - set(MODEL_KEYS) - {"model_name"})
    if unknown or "model_name" in table:
        raise ModelsFileError(
            f"{where}: unknown key(s) {', '.join(unknown or ['model_name'])}; a table may set {', '.join(k for k in MODEL_KEYS if k != 'model_name')}"
        )
    values: dict[str, Any] = {"model": name, **table, "model_name": name, "models_file": None}
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for key, value in values.items():
        kinds, described = _kind(fields[key])
        # TOML's booleans are not numbers here, though Python's are.
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
            raise ModelsFileError(f"{where}: {key} must be {described}, got {value!r}")
    for key in _PATH_KEYS:
        if key in values:
            values[key] = (path.parent / values[key]).resolve()
    try:
        model = dataclasses.replace(settings, **values)
        validate(model)
    except ValueError as exc:
        raise ModelsFileError(f"{where}: {exc}") from exc
    return model


def _kind(field: dataclasses.Field[Any]) -> tuple[tuple[type, ...], str]:
    """The TOML value types a setting accepts, and how to say so."""
    annotation = str(field.type)
    for name, kinds, described in (
        ("Path", (str,), "a path"), ("int", (int,), "an integer"), ("float", (int, float), "a number"),
        ("bool", (bool,), "true or false"),
    ):
        if annotation.startswith(name):
            return kinds, described
    return (str,), "a string"
