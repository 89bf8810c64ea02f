"""evaluate.py: the truth CSV checked against the model, and the scores computed from probabilities (the
command itself, on real models: tests/e2e/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from densenet_server.evaluate import Accuracy, MultiLabelScores, Truth, TruthError, accuracy, multi_label_scores, read_truth
from densenet_server.model_record import DENSENET121, SIGMOID

SINGLE = DENSENET121.with_changes(name="tiny", categories=("a", "b", "c"), published_categories=False)
MULTI = SINGLE.with_changes(output=SIGMOID)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "truth.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_truth_of_a_single_label_model(tmp_path: Path) -> None:
    path = write(tmp_path, "file,label_index,label_name\nx.jpg,2,c\ny.jpg, 0 ,a\n")
    assert read_truth(path, SINGLE) == [Truth("x.jpg", (2,)), Truth("y.jpg", (0,))]


def test_truth_of_a_multi_label_model_lists_any_number(tmp_path: Path) -> None:
    path = write(tmp_path, "file,label_index\nx.jpg,2;0\ny.jpg,\nz.jpg,1\n")
    assert read_truth(path, MULTI) == [Truth("x.jpg", (2, 0)), Truth("y.jpg", ()), Truth("z.jpg", (1,))]


@pytest.mark.parametrize(
    ("text", "record", "message"),
    [
        ("file,label\nx.jpg,1\n", SINGLE, "{path} needs the columns file and label_index"),
        ("file,label_index\nx.jpg,1\ny.jpg,3\n", SINGLE, "{path}, line 3: label_index 3 is not a class of tiny (0 to 2)"),
        ("file,label_index\nx.jpg,-1\n", MULTI, "{path}, line 2: label_index -1 is not a class of tiny (0 to 2)"),
        ("file,label_index\nx.jpg,cat\n", SINGLE, "{path}, line 2: label_index 'cat' is not a class index (an integer)"),
        (
            "file,label_index\nx.jpg,1;2\n", SINGLE,
            "{path}, line 2: label_index '1;2': tiny gives one class per image, so each file needs exactly one "
            "label_index (several, separated by ';', are for a --multi-label model)",
        ),
        (
            "file,label_index\nx.jpg,\n", SINGLE,
            "{path}, line 2: label_index '': tiny gives one class per image, so each file needs exactly one "
            "label_index (several, separated by ';', are for a --multi-label model)",
        ),
    ],
    ids=["columns", "too-large", "negative", "not-an-integer", "several-for-single", "none-for-single"],
)
def test_truth_the_model_cannot_be_scored_on_is_refused(tmp_path: Path, text: str, record: object, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TruthError) as refused:
        read_truth(path, record)  # type: ignore[arg-type]
    assert str(refused.value) == message.format(path=path)


def test_a_missing_truth_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TruthError, match=f"cannot read the truth file {tmp_path / 'none.csv'}: "):
        read_truth(tmp_path / "none.csv", SINGLE)


def test_accuracy_top1_and_top5() -> None:
    # Seven classes, so that top-5 leaves two out; ties go to the lower index, as in the answers.
    probabilities = np.array(
        [
            [0.30, 0.20, 0.15, 0.10, 0.10, 0.10, 0.05],  # label 0: top-1
            [0.30, 0.20, 0.15, 0.10, 0.10, 0.10, 0.05],  # label 4: 5th (tied with 3 and 5; 5 is 6th)
            [0.30, 0.20, 0.15, 0.10, 0.10, 0.10, 0.05],  # label 5: 6th, out
            [0.05, 0.10, 0.10, 0.10, 0.15, 0.20, 0.30],  # label 6: top-1
        ]
    )
    assert accuracy(probabilities, [0, 4, 5, 6], ["bad.jpg"]) == Accuracy(4, 0.5, 0.75, ["bad.jpg"])


def test_accuracy_of_fewer_than_five_classes_and_of_nothing() -> None:
    assert accuracy(np.array([[0.2, 0.8], [0.6, 0.4]]), [0, 0], []) == Accuracy(2, 0.5, 1.0, [])
    assert accuracy(np.zeros((0, 3)), [], ["a.jpg"]) == Accuracy(0, 0.0, 0.0, ["a.jpg"])


def test_multi_label_scores() -> None:
    probabilities = np.array(
        [
            [0.9, 0.6, 0.1],  # predicted {0, 1}, truth {0, 1}: exact
            [0.9, 0.1, 0.5],  # predicted {0, 2} (0.5 is at the threshold), truth {0}: one false positive
            [0.1, 0.2, 0.3],  # predicted {}, truth {1}: one miss
            [0.1, 0.2, 0.3],  # predicted {}, truth {}: exact
        ]
    )
    scores = multi_label_scores(probabilities, [(0, 1), (0,), (1,), ()], 0.5, [])
    # hits 3; predicted 4; truth 4
    assert scores == MultiLabelScores(4, 0.5, 0.75, 0.75, 0.75, 0.5, [])
    assert scores.summary() == (
        "images: 4  exact match: 0.5000  precision: 0.7500  recall: 0.7500  F1: 0.7500  (threshold 0.5)"
    )


def test_multi_label_scores_with_nothing_to_count_are_zero() -> None:
    scores = multi_label_scores(np.array([[0.1, 0.2]]), [()], 0.5, [])
    assert (scores.exact_match, scores.precision, scores.recall, scores.f1) == (1.0, 0.0, 0.0, 0.0)
    assert multi_label_scores(np.zeros((0, 2)), [], 0.5, ["x.jpg"]).images == 0
