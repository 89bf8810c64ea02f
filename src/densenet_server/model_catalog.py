"""Which record a setting names: DenseNet-121's built-in one, or any torchvision classifier's, read from
torchvision's own weights metadata (``get_model_weights(name).DEFAULT``: its ``transforms()`` and ``meta``);
then what the served weights and the settings make of it: the checkpoint's class count, a labels file,
multi-label outputs, the name it is served under.

Reading torchvision's metadata imports torchvision (and so PyTorch); the default model, and an ONNX export
(which carries its record), need neither.
"""

from __future__ import annotations

import json
from pathlib import Path

from .model_record import (
    DEFAULT_MODEL,
    DENSENET121,
    SIGMOID,
    SOFTMAX,
    ModelRecord,
    Preprocessing,
    PublishedWeights,
)
from .weights import WeightsError


def base_record(architecture: str) -> ModelRecord:
    """The record of torchvision's ``architecture`` with its published (DEFAULT) weights."""
    if architecture == DEFAULT_MODEL:
        return DENSENET121
    return torchvision_record(architecture)


def classification_models() -> list[str]:
    """torchvision's image classifiers (not its detection, segmentation, video or quantized models)."""
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def torchvision_record(architecture: str) -> ModelRecord:
    try:
        from torchvision.models import get_model_weights
        from torchvision.transforms._presets import ImageClassification
    except ImportError as exc:
        raise WeightsError(
            f"serving {architecture} needs torchvision to read its preprocessing and categories: install the "
            "'torch' extra, or serve an ONNX file made by `densenet-server export --model "
            f"{architecture}` with --onnx-model"
        ) from exc
    known = classification_models()
    if architecture not in known:
        raise WeightsError(
            f"unknown model {architecture!r}: --model takes one of torchvision's image classifiers "
            f"({', '.join(known)})"
        )
    weights = get_model_weights(architecture).DEFAULT
    transform = weights.transforms()
    if not isinstance(transform, ImageClassification):
        raise WeightsError(f"{architecture}'s weights do not use torchvision's image classification transform")
    record = ModelRecord(
        name=architecture,
        architecture=architecture,
        preprocessing=Preprocessing(
            resize_size=int(transform.resize_size[0]),
            crop_size=int(transform.crop_size[0]),
            interpolation=transform.interpolation.value,
            mean=tuple(float(v) for v in transform.mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in transform.std),  # type: ignore[arg-type]
        ),
        categories=tuple(weights.meta["categories"]),
        published=PublishedWeights(f"{type(weights).__name__}.{weights.name}", weights.url),
        key_remap="densenet" if architecture.startswith("densenet") else None,
    )
    problems = record.problems()
    if problems:
        raise WeightsError(f"{architecture} cannot be served: " + "; ".join(problems))
    return record


def with_class_count(record: ModelRecord, classes: int) -> ModelRecord:
    """The record for a checkpoint of ``record``'s architecture with ``classes`` outputs: its categories
    stay the published ones when the count matches, else they are class_0 ... (until a labels file names them)."""
    if classes == record.num_classes:
        return record
    return record.with_changes(
        categories=tuple(f"class_{index}" for index in range(classes)), published_categories=False
    )


def read_labels(path: Path) -> tuple[str, ...]:
    """A labels file: a JSON list of strings, or one label per line (blank lines at the end ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read the labels file {path}: {exc}") from exc
    if text.lstrip().startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WeightsError(f"the labels file {path} is not a valid JSON list: {exc}") from exc
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise WeightsError(f"the labels file {path} must be a JSON list of strings")
    else:
        labels = [line.strip() for line in text.rstrip("\n").split("\n")]
    if not labels or any(not label for label in labels):
        raise WeightsError(f"the labels file {path} has an empty label")
    return tuple(labels)


def served_record(
    record: ModelRecord,
    *,
    name: str | None = None,
    labels: Path | None = None,
    multi_label: bool = False,
    threshold: float | None = None,
) -> ModelRecord:
    """``record`` (whose categories match the weights) as served: named, labelled, and with its outputs."""
    changes: dict[str, object] = {
        "name": name or record.name,
        "output": SIGMOID if multi_label else SOFTMAX,
    }
    if threshold is not None:
        changes["threshold"] = threshold
    if labels is not None:
        named = read_labels(labels)
        if len(named) != record.num_classes:
            raise WeightsError(
                f"the labels file {labels} names {len(named)} classes, but the model has {record.num_classes} "
                "outputs"
            )
        changes.update(categories=named, published_categories=False)
    served = record.with_changes(**changes)
    problems = served.problems()
    if problems:
        raise WeightsError(f"model {served.name} cannot be served: " + "; ".join(problems))
    return served
