"""The one description of a served model: what it is called, how its input is prepared, what it answers.

Like timm's pretrained configs, a record is data: the preprocessing (torchvision's ImageClassification
transform: resize the short side, centre-crop, normalise), the categories, the published weights and how
their checkpoint's keys are spelled, and whether the outputs are one softmax or a sigmoid per class.
Everything that serves, describes or measures a model reads it from here (through the service); nothing
else knows 224, 1000 or the ImageNet mean. It imports neither PyTorch nor torchvision, so the ONNX Runtime
path can serve without them: DenseNet-121's record is built in, an export carries its own record, and
model_catalog.py reads any other torchvision model's from torchvision's weights metadata.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import Any

SOFTMAX = "softmax"  # one class per image: probabilities sum to 1
SIGMOID = "sigmoid"  # multi-label: each class's own probability
OUTPUTS = (SOFTMAX, SIGMOID)
# torchvision's InterpolationMode values that Pillow's resize reproduces exactly for PIL images.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
DEFAULT_THRESHOLD = 0.5
DEFAULT_MODEL = "densenet121"


@dataclass(frozen=True)
class Preprocessing:
    """torchvision's ImageClassification transform on a PIL image, as parameters."""

    resize_size: int  # the short side after resizing
    crop_size: int  # the side of the square centre crop
    interpolation: str  # one of INTERPOLATIONS
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's input per image: normalised float32 [3, crop, crop]."""
        return (3, self.crop_size, self.crop_size)

    @property
    def crop_shape(self) -> tuple[int, int, int]:
        """One image's uint8 crop [crop, crop, 3], before normalisation (what a front sends the engine)."""
        return (self.crop_size, self.crop_size, 3)

    def problems(self) -> list[str]:
        found = []
        if self.interpolation not in INTERPOLATIONS:
            found.append(f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}")
        if not 1 <= self.crop_size <= self.resize_size:
            # torchvision would pad a crop larger than the resized image; no published model does.
            found.append(f"crop size {self.crop_size} must be from 1 to the resize size {self.resize_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            found.append("mean and std need 3 values each, std above 0")
        return found


@dataclass(frozen=True)
class PublishedWeights:
    """Weights torchvision publishes for the architecture: its enum id and download address."""

    id: str  # e.g. "DenseNet121_Weights.IMAGENET1K_V1"
    url: str

    @property
    def sha256_prefix(self) -> str:
        # torchvision names its files "<name>-<first 8+ hex digits of sha256>.pth" and checks no more.
        return self.url.rsplit("-", 1)[1].removesuffix(".pth")


@dataclass(frozen=True)
class ModelRecord:
    name: str  # the name it is served under (answers' `model`, /v2/models/<name>, ?model=)
    architecture: str  # torchvision's builder, e.g. "densenet121"
    preprocessing: Preprocessing
    categories: tuple[str, ...]
    published: PublishedWeights | None = None
    # "densenet": the DenseNet checkpoints' pre-1.0 key spelling ("norm.1" for "norm1"), remapped on load.
    key_remap: str | None = None
    output: str = SOFTMAX
    threshold: float = DEFAULT_THRESHOLD  # multi-label: classes at or above it are in the answer's labels
    version: str = "1"
    # Whether categories are the published weights' own (ImageNet-1k), not a checkpoint's labels file.
    published_categories: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    @property
    def multi_label(self) -> bool:
        return self.output == SIGMOID

    def problems(self) -> list[str]:
        found = self.preprocessing.problems()
        if self.output not in OUTPUTS:
            found.append(f"output {self.output!r} is not one of {', '.join(OUTPUTS)}")
        if not 0.0 < self.threshold < 1.0:
            found.append(f"threshold {self.threshold} must be between 0 and 1")
        if not self.categories:
            found.append("a model needs at least one category")
        return found

    def with_changes(self, **changes: Any) -> ModelRecord:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelRecord:
        preprocessing = dict(values["preprocessing"])
        preprocessing["mean"] = tuple(float(v) for v in preprocessing["mean"])
        preprocessing["std"] = tuple(float(v) for v in preprocessing["std"])
        published = values.get("published")
        return cls(
            **{
                **values,
                "preprocessing": Preprocessing(**preprocessing),
                "categories": tuple(str(label) for label in values["categories"]),
                "published": PublishedWeights(**published) if published else None,
            }
        )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _imagenet_categories() -> tuple[str, ...]:
    # ImageNet-1k class names in torchvision's order (its weights' meta["categories"]).
    text = resources.files(__package__).joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


# Built in, so that the default model is served without torchvision (tests/unit/test_model_record.py
# checks it against torchvision's DenseNet121_Weights.IMAGENET1K_V1).
DENSENET121 = ModelRecord(
    name=DEFAULT_MODEL,
    architecture=DEFAULT_MODEL,
    preprocessing=Preprocessing(256, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
    categories=_imagenet_categories(),
    published=PublishedWeights(
        "DenseNet121_Weights.IMAGENET1K_V1", "https://download.pytorch.org/models/densenet121-a639ec97.pth"
    ),
    key_remap="densenet",
)
