"""End to end: GET /metrics in Prometheus format, with the numbers that operators need."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support.server_process import ServerProcess

CAT = (Path(__file__).resolve().parents[2] / "images" / "cat.jpg").read_bytes()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_batches_and_images(server: ServerProcess) -> None:
    before = scrape(server)
    assert server.get("/inference/cat.jpg").status_code == 200
    assert server.get("/inference/no-such-file.jpg").status_code == 404
    assert server.get("/no/such/route/x1").status_code == 404
    assert server.get("/no/such/route/x2").status_code == 404
    files = [("file", (f"cat{i}.jpg", CAT, "image/jpeg")) for i in range(3)]
    assert server.post("/inference", files=files).status_code == 200
    after = scrape(server)

    route = "/inference/<path:filename>"  # the URL rule, not the file name: bounded label values
    assert value(after, "densenet_http_requests_total", method="GET", route=route, status="200") - value(
        before, "densenet_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(after, "densenet_http_requests_total", method="GET", route=route, status="404") - value(
        before, "densenet_http_requests_total", method="GET", route=route, status="404") == 1
    assert value(after, "densenet_http_requests_total", method="GET", route="<unmatched>", status="404") - value(
        before, "densenet_http_requests_total", method="GET", route="<unmatched>", status="404") == 2
    assert not any("no-such-file" in str(key) or "x1" in str(key) for key in after)

    latency = "densenet_http_request_duration_seconds_count"
    assert value(after, latency, method="POST", route="/inference") - value(before, latency, method="POST", route="/inference") == 1
    assert value(after, "densenet_images_classified_total") - value(before, "densenet_images_classified_total") == 4
    # The three uploaded images went to the batcher together: at least one batch of 3 or more.
    big_batches = value(after, "densenet_inference_batch_size_count") - value(after, "densenet_inference_batch_size_bucket", le="2.0")
    assert big_batches >= 1
    assert value(after, "densenet_inference_batch_size_sum") - value(before, "densenet_inference_batch_size_sum") == 4
    for stage in ("preprocess", "batcher", "inference"):
        assert value(after, "densenet_stage_duration_seconds_count", stage=stage) > value(
            before, "densenet_stage_duration_seconds_count", stage=stage)
    assert value(after, "densenet_image_errors_total", kind="InvalidImage") >= 0
    assert ("densenet_queue_images", ()) in after
    assert value(after, "densenet_model_load_seconds") > 0
    assert value(after, "densenet_model_ready") == 1


def test_refused_images_are_counted_by_kind(server: ServerProcess) -> None:
    before = scrape(server)
    assert server.post("/inference", data=b"junk", headers={"Content-Type": "image/jpeg"}).status_code == 400
    after = scrape(server)
    assert value(after, "densenet_image_errors_total", kind="InvalidImage") - value(
        before, "densenet_image_errors_total", kind="InvalidImage") == 1
