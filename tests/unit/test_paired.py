"""The paired measurements alternate raw and HTTP windows and take each against the raw figures around it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from densenet_server.tooling.loadgen import LoadResult
from densenet_server.tooling.paired import (
    PairedRound,
    PairedScenario,
    client_p50,
    client_rate,
    latency_table,
    measure_paired,
    raw_latency,
    raw_rate,
    throughput_table,
)


def test_windows_alternate_and_each_round_is_taken_against_its_neighbours() -> None:
    events: list[str] = []
    raw_figures = iter([30.0, 32.0, 50.0, 52.0, 31.0])  # the machine changes speed between rounds

    def raw(seconds: float) -> float:
        events.append("raw")
        return next(raw_figures)

    def window_of(name: str, figure: float):
        def window(seconds: float) -> float:
            events.append(name)
            return figure

        return window

    scenarios = measure_paired(raw, {"GET": window_of("GET", 41.0), "POST": window_of("POST", 45.0)}, rounds=2, window_s=0.1)
    assert events == ["raw", "GET", "raw", "POST", "raw", "GET", "raw", "POST", "raw"]
    get, post = scenarios
    assert (get.name, post.name) == ("GET", "POST")
    assert [(r.raw_before, r.measured, r.raw_after) for r in get.rounds] == [(30.0, 41.0, 32.0), (50.0, 41.0, 52.0)]
    # The raw window after one scenario is the one before the next.
    assert [(r.raw_before, r.raw_after) for r in post.rounds] == [(32.0, 50.0), (52.0, 31.0)]
    assert [r.difference for r in get.rounds] == [10.0, -10.0]
    assert get.rounds[0].ratio == pytest.approx(41.0 / 31.0)


def test_the_reported_figures_are_the_median_round() -> None:
    rounds = [PairedRound(30.0, 40.0, 30.0), PairedRound(50.0, 90.0, 50.0), PairedRound(30.0, 38.0, 32.0)]
    scenario = PairedScenario("GET", rounds)
    assert scenario.difference == pytest.approx(10.0)  # 10, 40, 7 -> 10, not the mean 19
    assert scenario.ratio == pytest.approx(4 / 3)  # 1.33, 1.8, 1.23
    (heading, _, header, _, row) = latency_table([scenario], 2.0)
    assert heading.startswith("### One client against raw batch-1, paired (2 s windows")
    assert header.startswith("| scenario | rounds |")
    assert row == "| GET | 3 | 31.0 | 40.0 | +10.0 | +7.0 to +40.0 |"
    (heading, _, _, _, row) = throughput_table([scenario], 4.0, 16, "2 pass(es) at once of batch 2")
    assert heading.startswith("### 16 clients against the raw best, paired (4 s windows")
    assert heading.endswith("raw: 2 pass(es) at once of batch 2)")
    assert row == "| GET | 3 | 31.0 | 40.0 | 1.33 | 1.23 to 1.80 |"
    assert latency_table([], 2.0) == [] and throughput_table([], 2.0, 16, "") == []


def test_raw_windows_time_real_passes() -> None:
    calls: list[int] = []

    def one_pass() -> None:
        calls.append(1)
        time.sleep(0.01)

    latency = raw_latency(one_pass)
    assert calls == [1]  # the warm-up pass
    assert 9.0 <= latency(0.05) <= 50.0 and len(calls) >= 4
    batches: list[int] = []

    def lane(batch: np.ndarray) -> None:
        batches.append(len(batch))
        time.sleep(0.01)

    rate = raw_rate([lane, lane], np.zeros((3, 1), np.float32))(0.1)
    # Two lanes of 3 images every ~10 ms: about 600 images a second, never more.
    assert 100 < rate <= 600 and set(batches) == {3}


def test_client_windows_read_the_load_they_ran() -> None:
    result = LoadResult(1)
    result.latencies_s.extend([0.040, 0.050, 0.060])
    result.images_ok, result.seconds = 30, 2.0
    assert client_p50(lambda seconds: result)(2.0) == pytest.approx(50.0)
    assert client_rate(lambda seconds: result)(2.0) == pytest.approx(15.0)
