"""End to end: GET /metrics in Prometheus format, with the numbers that operators need."""

from __future__ import annotations

from support.paths import CAT_JPEG
from support.scraping import delta, scrape, value
from support.server_process import ServerProcess

CAT = CAT_JPEG.read_bytes()
MODEL = "densenet121"  # inference metrics are labelled by model; the server serves this one


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
    assert delta(before, after, "densenet_http_requests_total", method="GET", route=route, status="200") == 1
    assert delta(before, after, "densenet_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta(before, after, "densenet_http_requests_total", method="GET", route="<unmatched>", status="404") == 2
    assert not any("no-such-file" in str(key) or "x1" in str(key) for key in after)

    latency = "densenet_http_request_duration_seconds_count"
    assert delta(before, after, latency, method="POST", route="/inference") == 1
    assert delta(before, after, "densenet_images_classified_total", model=MODEL) == 4
    # Two forward passes: cat.jpg alone, and the three uploads of one request together.
    sizes = "densenet_inference_batch_size"
    assert delta(before, after, f"{sizes}_count", model=MODEL) == 2
    assert delta(before, after, f"{sizes}_bucket", model=MODEL, le="1.0") == 1
    assert delta(before, after, f"{sizes}_bucket", model=MODEL, le="2.0") == 1
    assert delta(before, after, f"{sizes}_bucket", model=MODEL, le="3.0") == 2
    assert delta(before, after, f"{sizes}_sum", model=MODEL) == 4
    # Each image preprocessed once; each request's images queued once; each forward pass timed once.
    for stage, count in (("preprocess", 4), ("batcher", 2), ("inference", 2)):
        assert delta(before, after, "densenet_stage_duration_seconds_count", model=MODEL, stage=stage) == count, stage
    # A missing file is no refused image: nothing here counts as an image error, of any kind.
    assert sum(
        after[key] - before.get(key, 0.0) for key in after if key[0] == "densenet_image_errors_total"
    ) == 0
    assert ("densenet_queue_images", (("model", MODEL),)) in after
    assert value(after, "densenet_model_load_seconds", model=MODEL) > 0
    assert value(after, "densenet_model_ready", model=MODEL) == 1


def test_refused_images_are_counted_by_kind(server: ServerProcess) -> None:
    before = scrape(server)
    assert server.post("/inference", data=b"junk", headers={"Content-Type": "image/jpeg"}).status_code == 400
    after = scrape(server)
    assert delta(before, after, "densenet_image_errors_total", model=MODEL, kind="InvalidImage") == 1
