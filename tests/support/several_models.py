"""A second model for the several-models tests, beside the session's DenseNet-121: a seeded random
ResNet-18 with 14 classes, multi-label, named by a labels file (like a chest X-ray model's findings), and
the models file that serves both."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from support.random_weights import write_checkpoint

DEFAULT_NAME = "densenet121"
SECOND_NAME = "xray"  # its served name differs from its architecture on purpose
SECOND_ARCHITECTURE = "resnet18"
SECOND_SEED = 14
SECOND_LABELS = (
    "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
    "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural thickening", "hernia",
)


@dataclass(frozen=True)
class SecondModel:
    weights: Path
    labels: Path
    model: nn.Module  # the same weights in memory, for torchvision's reference


def write_second_model(folder: Path) -> SecondModel:
    weights = folder / f"{SECOND_ARCHITECTURE}-{len(SECOND_LABELS)}.pth"
    model = write_checkpoint(weights, seed=SECOND_SEED, architecture=SECOND_ARCHITECTURE, num_classes=len(SECOND_LABELS))
    labels = folder / "xray-labels.txt"
    labels.write_text("\n".join(SECOND_LABELS) + "\n", encoding="utf-8")
    return SecondModel(weights, labels, model)


def second_model_flags(second: SecondModel, *extra: str) -> list[str]:
    """The command-line flags that give ``second`` to a command (classify, evaluate, export, serve)."""
    return ["--model", SECOND_ARCHITECTURE, "--weights", str(second.weights), "--labels", str(second.labels), *extra]


def write_models_file(path: Path, default_weights: Path, second: SecondModel, **second_settings: object) -> Path:
    """A models file serving the DenseNet-121 checkpoint as the default and ``second`` after it (with
    any further settings of its table, e.g. backend = "torch")."""
    extra = "".join(f"{key} = {_toml(value)}\n" for key, value in second_settings.items())
    path.write_text(
        f"[models.{DEFAULT_NAME}]\n"
        f"weights = {_toml(str(default_weights))}\n\n"
        f"[models.{SECOND_NAME}]\n"
        f"model = {_toml(SECOND_ARCHITECTURE)}\n"
        f"weights = {_toml(str(second.weights))}\n"
        f"labels = {_toml(str(second.labels))}\n"
        "multi_label = true\n" + extra,
        encoding="utf-8",
    )
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # A TOML basic string: JSON's escaping is valid TOML.
    return json.dumps(str(value))
