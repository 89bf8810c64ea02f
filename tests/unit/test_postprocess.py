from __future__ import annotations

import numpy as np

from densenet_server.postprocess import softmax, top_k

CATEGORIES = [f"class {i}" for i in range(6)]


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    probabilities = softmax(np.array([[1000.0, 1000.0, 0.0], [0.0, 1.0, 2.0]], dtype=np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[0, :2], 0.5)
    assert probabilities[1].argmax() == 2


def test_top_k_orders_by_probability_then_index() -> None:
    probabilities = np.array([0.1, 0.3, 0.1, 0.4, 0.05, 0.05])
    best = top_k(probabilities, 3, CATEGORIES)
    assert [entry["index"] for entry in best] == [3, 1, 0]
    assert best[0] == {"index": 3, "label": "class 3", "probability": 0.4}


def test_top_k_is_clamped_to_the_number_of_classes() -> None:
    assert len(top_k(np.full(6, 1 / 6), 50, CATEGORIES)) == 6
    assert len(top_k(np.full(6, 1 / 6), 0, CATEGORIES)) == 1
