"""`densenet-server bench` runs every measurement and reports it; its pieces compute what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from support.printed import printed_quotient_agrees

from densenet_server.config import Settings, load_settings
from densenet_server.tooling import agreement
from densenet_server.routes.v2_tensors import parse_infer_request
from densenet_server.tooling.bench import (
    BenchOptions,
    _server_environment,
    batches_of,
    measure_raw,
    run_bench,
    v2_infer_requests,
)

REPO_IMAGES = Path(__file__).resolve().parents[2] / "images"


class ConstantBackend:
    name = "constant"
    precision = "fp32"
    lane_predicts = ()

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        return np.zeros((len(batch), 1000), np.float32)


def test_measure_raw_runs_every_batch_size() -> None:
    backend = ConstantBackend()
    (result,) = measure_raw(backend, np.zeros((3, 3, 224, 224), np.float32), repeats=2)
    assert sorted(set(backend.batch_sizes)) == [1, 2, 4, 8, 16]
    assert set(result.images_per_s) == {1, 2, 4, 8, 16} and result.latency_bs1_ms > 0
    assert result.best[1] == max(result.images_per_s.values())


def test_agreement_compares_probabilities_and_top1() -> None:
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    candidate = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    result = agreement.compare("x", candidate, reference)
    assert result.images == 2 and result.top1_agreement == 0.5
    assert result.max_abs_diff == pytest.approx(0.3) and result.mean_abs_diff == pytest.approx(0.8 / 6)


def test_the_server_gets_the_benchmarks_settings(checkpoint_path: Path) -> None:
    settings = Settings(weights=checkpoint_path, max_batch_size=4, jpeg_draft=True)
    environment = _server_environment(settings)
    assert load_settings({}, environment) == settings
    assert "DENSENET_ONNX_MODEL" not in environment


def test_a_short_run_reports_every_table(checkpoint_path: Path) -> None:
    options = BenchOptions(
        photos_dirs=[REPO_IMAGES], concurrencies=(1, 2), duration_s=1.0, warmup_s=0.2, web_images=4,
        phone_images=2, raw_repeats=1, raw_backends=("onnxruntime", "torch"), images_per_request=3,
        v2_concurrencies=(2,), paired_rounds=2, paired_window_s=0.3, paired_throughput_rounds=1,
        paired_throughput_window_s=0.5,
    )
    full_report = run_bench(Settings(weights=checkpoint_path, threads=2), options, report=lambda line: None)
    report, paired = full_report.split("### One client against raw batch-1, paired (0.3 s windows")
    paired, paired_throughput = paired.split("### 2 clients against the raw best, paired (0.5 s windows")
    assert re.search(r"\| onnxruntime \| fp32 \| 1 \| [\d.]+ \|", report)
    assert re.search(r"\| onnxruntime \| fp32 \| 2 \|  \| [\d.]+ \|", report)  # the parallel lanes
    assert re.search(r"\| onnxruntime \| fp32 \| 2, a session each \|  \| [\d.]+ \|", report)  # the reference
    assert re.search(r"\| torch \| fp32 \| 1 \| [\d.]+ \|", report)
    assert "| onnxruntime fp32 vs torch fp32 (500x375 JPEGs) | 4 |" in report
    assert "| --jpeg-draft vs exact decoding (onnxruntime, 4000x3000 JPEGs) | 2 |" in report
    rows = [line for line in report.splitlines() if line.startswith(("| GET", "| POST"))]
    assert len(rows) == 2 + 2 + 2  # GET and POST at 2 concurrencies, 12-MP exact and with --jpeg-draft
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        requests, failed, images_per_s = int(cells[2]), int(cells[3]), float(cells[4])
        assert requests > 0 and failed == 0 and images_per_s > 0, row
        assert 0 < float(cells[9]) < 400, row  # client CPU %: the Python generator's own, measured
    # The same 3-image v2 requests over HTTP and gRPC, and their ratio.
    v2_rows = [line for line in report.splitlines() if line.startswith("| v2 over")]
    assert [row.split("|")[1].strip() for row in v2_rows] == ["v2 over HTTP, 3 images", "v2 over gRPC, 3 images"]
    for row in v2_rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert (cells[1], int(cells[3])) == ("2", 0) and int(cells[2]) > 0 and float(cells[4]) > 0, row
    assert re.search(r"gRPC ÷ HTTP, img/s of the same v2 requests: [\d.]+ at 2 client\(s\)\.", report)
    assert "Load generator: python" in report
    assert "Raw best for the served backend" in report
    paired_rows = [line for line in paired.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split("|")[1].strip() for row in paired_rows] == ["GET /inference/<file> 500x375", "POST /inference 500x375"]
    for row in paired_rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        rounds, raw_ms, p50_ms, over_raw_ms = int(cells[1]), float(cells[2]), float(cells[3]), float(cells[4])
        assert rounds == 2 and raw_ms > 0 and p50_ms > 0, row
        assert over_raw_ms == pytest.approx(p50_ms - raw_ms, abs=raw_ms), row  # a difference of the two
    # The most clients against the layout of the best raw row, in the same alternation. Which layout is
    # best (one pass on both threads, or two one-thread passes at once) depends on the machine's speed.
    assert re.match(r", raw before and after each; raw: [12] pass\(es\) at once of batch (1|2|4|8|16)\)", paired_throughput)
    throughput_rows = [line for line in paired_throughput.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split("|")[1].strip() for row in throughput_rows] == ["GET /inference/<file> 500x375", "POST /inference 500x375"]
    for row in throughput_rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        rounds, raw_rate, rate = int(cells[1]), float(cells[2]), float(cells[3])
        assert rounds == 1 and raw_rate > 0 and rate > 0, row
        # The ratio of the unrounded rates: it need only agree with the printed ones to their rounding.
        assert printed_quotient_agrees(cells[4], numerator=cells[3], denominator=cells[2]), row


def test_v2_requests_are_tritonclients_binary_form_in_batches() -> None:
    cycle = v2_infer_requests("m", batches_of([b"a", b"bb", b"ccc"], 2))
    (spec,) = cycle.specs  # 3 images make one batch of 2
    assert (spec.method, spec.path, spec.images) == ("POST", "/v2/models/m/infer", 2)
    parsed = parse_infer_request(spec.content, spec.headers["Inference-Header-Content-Length"], 10, (3, 4, 4))
    assert parsed.inputs == [("image", [b"a", b"bb"])] and parsed.outputs[0].binary
    assert batches_of([b"a"], 3) == [[b"a", b"a", b"a"]]  # fewer images than a batch: they repeat
