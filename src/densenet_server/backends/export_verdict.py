"""The rule an ONNX export must meet to be served: it computes what PyTorch computes, to float32's precision.

On each image of the verification batch, the export's logits are compared with PyTorch's, and the image
passes when both hold:

1. **The same ranking.** The export's top-k classes (k = TOP_K, or every class of a smaller head) are
   PyTorch's, in PyTorch's order; two classes whose PyTorch logits lie within the logit tolerance of each
   other are tied at float32's precision, and may come in either order.
2. **The same numbers.** Its probabilities (the record's own softmax or sigmoid) are within
   PROBABILITY_TOLERANCE of PyTorch's, *or* its logits are within LOGIT_TOLERANCE of the spread of
   PyTorch's logits of that image (their range, max - min: the scale on which the classes are told apart).

The first half of (2) is the product's fp32 promise. The second exists because a correct export is not
always within 1e-4 in probability: ONNX Runtime and PyTorch choose their kernels by the CPU's vector
extensions (AVX2, AVX-512, VNNI), fold BatchNorm into convolutions and sum in other orders, and in a badly
conditioned network (peaked outputs, near-constant BatchNorm channels) those float32 rounding differences
grow. Measured on an AVX2-only EPYC with seeded random checkpoints (docs/testing.md): on the all-zero
image, the input nearest to photos, correct exports of ten architectures stay within 1.8e-4 of the logit
range and wrong ones (a missing layer, another framework's HardSigmoid) are 6.6e-3 or more off; on the
noise images a correct export reached 3.7e-3, on answers so saturated that their probabilities agree.
LOGIT_TOLERANCE sits between the two on the all-zero image, over five times the worst correct figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model_record import ModelRecord
from ..postprocess import probabilities

PROBABILITY_TOLERANCE = 1e-4
LOGIT_TOLERANCE = 1e-3  # of the image's logit range
TOP_K = 5


@dataclass(frozen=True)
class ImageVerdict:
    """How the export's answer for one verification image compares with PyTorch's."""

    probability_diff: float
    logit_diff: float
    logit_range: float
    ranking_kept: bool
    expected_top: tuple[int, ...]
    actual_top: tuple[int, ...]

    @property
    def relative_logit_diff(self) -> float:
        if self.logit_range > 0:
            return self.logit_diff / self.logit_range
        return 0.0 if self.logit_diff == 0 else float("inf")  # constant logits: only an exact copy keeps them

    @property
    def numbers_kept(self) -> bool:
        return self.probability_diff <= PROBABILITY_TOLERANCE or self.relative_logit_diff <= LOGIT_TOLERANCE

    @property
    def passed(self) -> bool:
        return self.ranking_kept and self.numbers_kept

    def describe(self) -> str:
        ranking = "" if self.ranking_kept else (
            f"; its top-{len(self.expected_top)} classes are {list(self.actual_top)}, PyTorch's {list(self.expected_top)}"
        )
        return (
            f"probabilities by {self.probability_diff:.2e} (tolerance {PROBABILITY_TOLERANCE:g}) and logits by "
            f"{self.logit_diff:.3g}, {self.relative_logit_diff:.2e} of their range {self.logit_range:.3g} "
            f"(tolerance {LOGIT_TOLERANCE:g}){ranking}"
        )


@dataclass(frozen=True)
class ExportVerdict:
    images: tuple[ImageVerdict, ...]

    @property
    def passed(self) -> bool:
        return all(image.passed for image in self.images)

    @property
    def max_probability_diff(self) -> float:
        return max(image.probability_diff for image in self.images)

    @property
    def max_logit_diff(self) -> float:
        return max(image.logit_diff for image in self.images)

    @property
    def max_relative_logit_diff(self) -> float:
        return max(image.relative_logit_diff for image in self.images)

    def worst_failure(self) -> tuple[int, ImageVerdict] | None:
        """The failing image whose logits are furthest off, with its position in the batch."""
        failed = [(number, image) for number, image in enumerate(self.images) if not image.passed]
        return max(failed, key=lambda item: item[1].relative_logit_diff, default=None)


def _ranking_kept(expected: np.ndarray, actual: np.ndarray, tie: float, k: int) -> bool:
    """True when the k classes the export ranks first have, rank by rank, PyTorch's logit of that rank
    (to within ``tie``): the same classes in the same order, up to classes tied at float32's precision."""
    expected_sorted = np.sort(expected)[::-1][:k]
    actual_order = np.argsort(-actual, kind="stable")[:k]
    return bool(np.all(np.abs(expected[actual_order] - expected_sorted) <= tie))


def judge_image(expected: np.ndarray, actual: np.ndarray, record: ModelRecord) -> ImageVerdict:
    """One image's logits [classes]: PyTorch's (``expected``) and the export's (``actual``)."""
    k = min(TOP_K, expected.shape[-1])
    logit_range = float(np.ptp(expected))
    probability_diff = float(np.abs(probabilities(actual[None], record) - probabilities(expected[None], record)).max())
    return ImageVerdict(
        probability_diff=probability_diff,
        logit_diff=float(np.abs(actual.astype(np.float64) - expected).max()),
        logit_range=logit_range,
        ranking_kept=_ranking_kept(expected.astype(np.float64), actual, LOGIT_TOLERANCE * logit_range, k),
        expected_top=tuple(int(i) for i in np.argsort(-expected, kind="stable")[:k]),
        actual_top=tuple(int(i) for i in np.argsort(-actual, kind="stable")[:k]),
    )


def judge_export(expected: np.ndarray, actual: np.ndarray, record: ModelRecord) -> ExportVerdict:
    """The verdict on a batch of logits [images, classes]: PyTorch's and the export's."""
    if expected.shape != actual.shape:
        raise ValueError(f"the export gives logits of shape {actual.shape}, PyTorch {expected.shape}")
    return ExportVerdict(tuple(judge_image(e, a, record) for e, a in zip(expected, actual)))
