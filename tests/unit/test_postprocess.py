from __future__ import annotations

import math

import numpy as np

from densenet_server.engine.base import ModelInfo
from densenet_server.model_record import DENSENET121, SIGMOID
from densenet_server.postprocess import at_or_above, build_answer, probabilities, sigmoid, softmax, top_k
from densenet_server.weights import WeightsInfo

CATEGORIES = [f"class {i}" for i in range(6)]


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    probabilities = softmax(np.array([[1000.0, 1000.0, 0.0], [0.0, 1.0, 2.0]], dtype=np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[0, :2], 0.5)
    assert probabilities[1].argmax() == 2


def test_softmax_on_known_values_in_float64() -> None:
    # exp(ln 3) = 3: the probabilities of [0, ln 3] are exactly 1/4 and 3/4.
    probabilities = softmax(np.array([[0.0, math.log(3)]], dtype=np.float32))
    assert probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities, [[0.25, 0.75]], rtol=1e-7)
    # A probability float32 would round to 0 keeps its value: the top-k answer reports it.
    tiny = softmax(np.array([[0.0, -120.0]], dtype=np.float32))
    assert tiny[0, 1] > 0 and math.isclose(tiny[0, 1], math.exp(-120), rel_tol=1e-6)


def test_softmax_of_a_single_vector_is_over_its_only_axis() -> None:
    probabilities = softmax(np.array([0.0, math.log(3)]))
    np.testing.assert_allclose(probabilities, [0.25, 0.75], rtol=1e-12)


def test_sigmoid_on_known_values_in_float64() -> None:
    # 1 / (1 + exp(-ln 3)) = 3/4; each class on its own: the row need not sum to 1.
    values = sigmoid(np.array([[0.0, math.log(3), -math.log(3)]], dtype=np.float32))
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, [[0.5, 0.75, 0.25]], rtol=1e-7)


def test_sigmoid_survives_large_logits_of_either_sign() -> None:
    with np.errstate(over="raise", invalid="raise"):  # no overflow, no NaN on the way
        values = sigmoid(np.array([1000.0, -1000.0, 40.0, -120.0], dtype=np.float32))
    assert values[0] == 1.0 and values[1] == 0.0
    assert 1.0 - values[2] < 1e-17
    # A probability float32 would round to 0 keeps its value, as the softmax's do.
    assert math.isclose(values[3], math.exp(-120), rel_tol=1e-6)


def test_the_records_output_chooses_softmax_or_sigmoid() -> None:
    logits = np.array([[0.0, math.log(3)]], dtype=np.float32)
    np.testing.assert_allclose(probabilities(logits, DENSENET121), [[0.25, 0.75]], rtol=1e-7)
    np.testing.assert_allclose(probabilities(logits, DENSENET121.with_changes(output=SIGMOID)), [[0.5, 0.75]], rtol=1e-7)


def test_at_or_above_keeps_every_class_from_the_threshold_most_probable_first() -> None:
    values = np.array([0.5, 0.2, 0.9, 0.4999, 0.5, 0.7])
    chosen = at_or_above(values, 0.5, CATEGORIES)
    # The threshold itself is in; ties go to the lower index, as in top_k.
    assert [entry["index"] for entry in chosen] == [2, 5, 0, 4]
    assert chosen[0] == {"index": 2, "label": "class 2", "probability": 0.9}
    assert at_or_above(values, 0.95, CATEGORIES) == []


def test_top_k_orders_by_probability_then_index() -> None:
    probabilities = np.array([0.1, 0.3, 0.1, 0.4, 0.05, 0.05])
    best = top_k(probabilities, 3, CATEGORIES)
    assert [entry["index"] for entry in best] == [3, 1, 0]
    assert best[0] == {"index": 3, "label": "class 3", "probability": 0.4}


def test_top_k_ties_on_a_real_sized_row_go_to_the_lower_index() -> None:
    """1000 classes with many ties: numpy's default (unstable) sort orders them differently."""
    probabilities = np.random.default_rng(0).integers(0, 3, 1000).astype(np.float64) / 1000
    labels = [f"c{i}" for i in range(1000)]
    expected = sorted(range(1000), key=lambda i: (-probabilities[i], i))[:500]
    assert [entry["index"] for entry in top_k(probabilities, 500, labels)] == expected


def test_top_k_is_clamped_to_the_number_of_classes() -> None:
    assert len(top_k(np.full(6, 1 / 6), 50, CATEGORIES)) == 6
    assert len(top_k(np.full(6, 1 / 6), 0, CATEGORIES)) == 1


def _info(multi_label: bool, warning: str | None) -> ModelInfo:
    record = DENSENET121.with_changes(
        name="xray", categories=tuple(CATEGORIES), output=SIGMOID if multi_label else "softmax", threshold=0.3
    )
    weights = WeightsInfo("file x.pth sha256:0123", False, "0123" * 16, warning)
    return ModelInfo(record, weights, "onnxruntime", "fp32", "cpu")


def test_build_answer_is_the_seed_fields_then_the_serving_facts() -> None:
    row = np.array([0.05, 0.4, 0.1, 0.3, 0.1, 0.05])
    answer = build_answer(_info(False, None), row, 2)
    assert answer == {
        "class": "class 1",
        "index": 1,
        "probability": 0.4,
        "top_k": [
            {"index": 1, "label": "class 1", "probability": 0.4},
            {"index": 3, "label": "class 3", "probability": 0.3},
        ],
        "model": "xray",
        "weights": "file x.pth sha256:0123",
        "weights_published": False,
        "backend": "onnxruntime",
        "precision": "fp32",
        "device": "cpu",
    }
    assert list(answer) == ["class", "index", "probability", "top_k", "model", "weights", "weights_published", "backend", "precision", "device"]


def test_build_answer_of_a_multi_label_model_adds_its_labels_and_threshold_and_the_warning() -> None:
    row = np.array([0.9, 0.2, 0.3, 0.31, 0.01, 0.6])
    answer = build_answer(_info(True, "not the published weights"), row, 1)
    assert answer["top_k"] == [{"index": 0, "label": "class 0", "probability": 0.9}]
    assert answer["labels"] == [
        {"index": 0, "label": "class 0", "probability": 0.9},
        {"index": 5, "label": "class 5", "probability": 0.6},
        {"index": 3, "label": "class 3", "probability": 0.31},
        {"index": 2, "label": "class 2", "probability": 0.3},
    ]
    assert answer["threshold"] == 0.3
    assert answer["warning"] == "not the published weights"
    assert list(answer)[:6] == ["class", "index", "probability", "top_k", "labels", "threshold"]
    assert list(answer)[-1] == "warning"


def test_at_or_above_ties_on_a_real_sized_row_go_to_the_lower_index() -> None:
    # NumPy's default sort is stable only for short arrays: a row of many tied classes tells them apart.
    row = np.full(1000, 0.7)
    row[::3] = 0.9
    chosen = at_or_above(row, 0.5, [f"c{i}" for i in range(1000)])
    expected = [*range(0, 1000, 3), *(i for i in range(1000) if i % 3)]
    assert [entry["index"] for entry in chosen] == expected
