from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from densenet_server.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_model_has_its_series_at_zero_before_its_first_answer() -> None:
    metrics = Metrics()
    metrics.for_model("xray")
    found = samples(metrics)
    assert found[("densenet_images_classified_total", (("model", "xray"),))] == 0
    assert found[("densenet_inference_batch_size_count", (("model", "xray"),))] == 0
    assert found[("densenet_queue_images", (("model", "xray"),))] == 0
    assert found[("densenet_model_ready", (("model", "xray"),))] == 0


def test_two_models_count_apart() -> None:
    metrics = Metrics()
    first, second = metrics.for_model("a"), metrics.for_model("b")
    first.count_classified(3)
    second.observe_batch(2, 0.01)
    first.image_refused("InvalidImage")
    found = samples(metrics)
    assert found[("densenet_images_classified_total", (("model", "a"),))] == 3
    assert found[("densenet_images_classified_total", (("model", "b"),))] == 0
    assert found[("densenet_inference_batch_size_count", (("model", "b"),))] == 1
    assert found[("densenet_inference_batch_size_count", (("model", "a"),))] == 0
    assert found[("densenet_image_errors_total", (("kind", "InvalidImage"), ("model", "a")))] == 1
    assert ("densenet_image_errors_total", (("kind", "InvalidImage"), ("model", "b"))) not in found
