"""The export rule (backends/export_verdict.py) on logits made to sit on either side of each tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from densenet_server.backends.export_verdict import (
    LOGIT_TOLERANCE,
    PROBABILITY_TOLERANCE,
    judge_export,
    judge_image,
)
from densenet_server.model_record import DENSENET121, SIGMOID

# Two close leading classes (probabilities about 0.44 and 0.33) over a tail: the logit range is 30, so a
# shift of the leader by 1e-4 of the range (0.003) moves its probability by about 7e-4.
PEAKED = np.array([10.0, 9.7, 5.0, 4.0, 3.0, 2.0, -20.0], dtype=np.float32)
LOGIT_RANGE = 30.0


def shifted(logits: np.ndarray, index: int, by: float) -> np.ndarray:
    moved = logits.copy()
    moved[index] += by
    return moved


def test_identical_logits_pass_with_zero_differences() -> None:
    verdict = judge_image(PEAKED, PEAKED.copy(), DENSENET121)
    assert verdict.passed and (verdict.probability_diff, verdict.logit_diff) == (0.0, 0.0)
    assert verdict.logit_range == LOGIT_RANGE and verdict.expected_top == (0, 1, 2, 3, 4)


def test_rounding_beyond_the_probability_tolerance_passes_on_the_logits() -> None:
    verdict = judge_image(PEAKED, shifted(PEAKED, 0, 1e-4 * LOGIT_RANGE), DENSENET121)
    assert verdict.probability_diff > PROBABILITY_TOLERANCE  # the second half of the rule decides
    assert verdict.relative_logit_diff == pytest.approx(1e-4, rel=1e-3)
    assert verdict.passed


def test_logits_off_beyond_both_tolerances_fail() -> None:
    verdict = judge_image(PEAKED, shifted(PEAKED, 1, 2 * LOGIT_TOLERANCE * LOGIT_RANGE), DENSENET121)
    assert verdict.ranking_kept and not verdict.numbers_kept and not verdict.passed
    assert verdict.relative_logit_diff == pytest.approx(2 * LOGIT_TOLERANCE, rel=1e-3)


def test_a_saturated_answer_passes_on_its_probabilities_whatever_its_logits() -> None:
    saturated = np.array([900.0, 10.0, 5.0, 4.0, 3.0, 2.0], dtype=np.float32)
    verdict = judge_image(saturated, shifted(saturated, 1, 8.0), DENSENET121)
    assert verdict.relative_logit_diff > LOGIT_TOLERANCE and verdict.probability_diff < PROBABILITY_TOLERANCE
    assert verdict.passed


def test_a_reordered_top_k_fails_even_when_the_probabilities_agree() -> None:
    # Classes 3 and 4 trade places far down the tail, where their probabilities (~1e-7) barely move.
    tail = np.array([10.0, 9.7, -5.0, -6.0, -7.0, -8.0, -20.0], dtype=np.float32)
    reordered = tail.copy()
    reordered[[3, 4]] = tail[[4, 3]]
    verdict = judge_image(tail, reordered, DENSENET121)
    assert verdict.probability_diff < PROBABILITY_TOLERANCE and verdict.numbers_kept
    assert not verdict.ranking_kept and not verdict.passed
    assert (verdict.expected_top, verdict.actual_top) == ((0, 1, 2, 3, 4), (0, 1, 2, 4, 3))


def test_only_the_top_k_is_ranked() -> None:
    # The 6th and 7th classes trade places: beyond the top 5, where only the numbers count.
    tail = np.array([10.0, 9.7, -5.0, -6.0, -7.0, -8.0, -9.0, -20.0], dtype=np.float32)
    reordered = tail.copy()
    reordered[[5, 6]] = tail[[6, 5]]
    verdict = judge_image(tail, reordered, DENSENET121)
    assert verdict.ranking_kept and verdict.probability_diff < PROBABILITY_TOLERANCE and verdict.passed


def test_classes_tied_at_float32_precision_may_swap() -> None:
    tied = PEAKED.copy()
    tied[4] = tied[3] - 0.5 * LOGIT_TOLERANCE * LOGIT_RANGE
    swapped = tied.copy()
    swapped[[3, 4]] = tied[[4, 3]]
    assert judge_image(tied, swapped, DENSENET121).passed
    apart = PEAKED.copy()
    apart[4] = apart[3] - 2 * LOGIT_TOLERANCE * LOGIT_RANGE  # no longer within the tolerance: not tied
    swapped = apart.copy()
    swapped[[3, 4]] = apart[[4, 3]]
    assert not judge_image(apart, swapped, DENSENET121).ranking_kept


def test_classes_tied_exactly_are_reported_lowest_index_first() -> None:
    # On a 1000-class row NumPy's default sort does not keep tied indices in order; the report must.
    row = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    row[[999, 500, 3, 700, 900, 10]] = 9.0
    verdict = judge_image(row, row.copy(), DENSENET121)
    assert verdict.expected_top == verdict.actual_top == (3, 10, 500, 700, 900) and verdict.passed


def test_a_head_smaller_than_k_is_ranked_in_full() -> None:
    verdict = judge_image(np.array([1.0, 3.0, 2.0]), np.array([1.0, 3.0, 2.0]), DENSENET121)
    assert verdict.expected_top == (1, 2, 0) and verdict.passed


def test_the_records_own_output_function_decides() -> None:
    # Equal logits all moved by 0.01: softmax cannot see it, each class's sigmoid can.
    same, moved = np.zeros(4, np.float32), np.full(4, 0.01, np.float32)
    assert judge_image(same, moved, DENSENET121).passed
    multi_label = judge_image(same, moved, DENSENET121.with_changes(output=SIGMOID))
    assert multi_label.probability_diff == pytest.approx(0.0025, rel=1e-2) and not multi_label.passed
    assert multi_label.relative_logit_diff == float("inf")  # constant logits: only an exact copy keeps them


def test_the_batch_fails_on_any_image_and_names_the_worst() -> None:
    expected = np.stack([PEAKED, PEAKED, PEAKED])
    actual = np.stack([PEAKED, shifted(PEAKED, 1, 1.0), shifted(PEAKED, 1, 0.1)])
    verdict = judge_export(expected, actual, DENSENET121)
    assert not verdict.passed and [image.passed for image in verdict.images] == [True, False, False]
    number, worst = verdict.worst_failure()
    assert number == 1 and worst.logit_diff == pytest.approx(1.0)  # the furthest off, not the last
    assert verdict.max_logit_diff == pytest.approx(1.0) and verdict.max_relative_logit_diff == pytest.approx(1 / 30)
    assert judge_export(expected, expected.copy(), DENSENET121).worst_failure() is None


def test_the_description_gives_the_figures() -> None:
    verdict = judge_image(PEAKED, shifted(PEAKED, 1, 1.0), DENSENET121)
    assert verdict.describe() == (
        f"probabilities by {verdict.probability_diff:.2e} (tolerance 0.0001) and logits by 1, "
        f"{1 / 30:.2e} of their range 30 (tolerance 0.001); its top-5 classes are [1, 0, 2, 3, 4], "
        "PyTorch's [0, 1, 2, 3, 4]"
    )


def test_a_kept_ranking_is_not_described() -> None:
    verdict = judge_image(PEAKED, shifted(PEAKED, 2, 1.0), DENSENET121)
    assert verdict.ranking_kept and not verdict.passed
    assert verdict.describe().endswith(f"{1 / 30:.2e} of their range 30 (tolerance 0.001)")


def test_logits_of_another_shape_are_not_judged() -> None:
    with pytest.raises(ValueError, match=r"^the export gives logits of shape \(1, 3\), PyTorch \(1, 7\)$"):
        judge_export(PEAKED[None], PEAKED[None, :3], DENSENET121)
