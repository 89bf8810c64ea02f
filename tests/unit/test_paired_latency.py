"""The paired one-client measurement alternates raw and HTTP windows and subtracts the raw latency around each."""

from __future__ import annotations

import time

import pytest

from densenet_server.tooling.loadgen import LoadResult
from densenet_server.tooling.paired_latency import PairedRound, PairedScenario, measure_paired, paired_table, raw_window_ms


def _load_of(name: str, latency_s: float, events: list[str]):
    def load(seconds: float) -> LoadResult:
        events.append(name)
        result = LoadResult(1)
        result.latencies_s.extend([latency_s, latency_s, latency_s])
        return result

    return load


def test_windows_alternate_and_each_round_is_taken_against_its_neighbours() -> None:
    events: list[str] = []
    passes: list[float] = []

    def one_pass() -> None:
        # Slower with every window, as a machine that changes speed: the neighbours must follow it.
        if not events or events[-1] != "raw":
            events.append("raw")
        time.sleep(0.002 * (1 + events.count("raw")))
        passes.append(time.perf_counter())

    loads = {"GET": _load_of("GET", 0.050, events), "POST": _load_of("POST", 0.030, events)}
    scenarios = measure_paired(one_pass, loads, rounds=2, window_s=0.02)
    assert events == ["raw", "GET", "raw", "POST", "raw", "GET", "raw", "POST", "raw"]
    by_name = {scenario.name: scenario for scenario in scenarios}
    assert [len(by_name[name].rounds) for name in ("GET", "POST")] == [2, 2]
    get_rounds = by_name["GET"].rounds
    # The raw window after one scenario is the one before the next.
    assert get_rounds[1].raw_before_ms == by_name["POST"].rounds[0].raw_after_ms
    for found in get_rounds:
        assert found.client_p50_ms == pytest.approx(50.0)
        assert found.over_raw_ms == pytest.approx(50.0 - (found.raw_before_ms + found.raw_after_ms) / 2)
        assert found.raw_after_ms > found.raw_before_ms  # the machine slowed, and the pairing saw it


def test_the_reported_difference_is_the_median_round() -> None:
    rounds = [PairedRound(30.0, 40.0, 30.0), PairedRound(50.0, 90.0, 50.0), PairedRound(30.0, 38.0, 32.0)]
    scenario = PairedScenario("GET", rounds)
    assert scenario.over_raw_ms == pytest.approx(10.0)  # 10, 40, 7 -> 10, not the mean 19
    (heading, _, header, _, row) = paired_table([scenario], 2.0)
    assert heading.startswith("### One client against raw batch-1, paired (2 s windows")
    assert header.startswith("| scenario | rounds |")
    assert row == "| GET | 3 | 31.0 | 40.0 | +10.0 | +7.0 to +40.0 |"
    assert paired_table([], 2.0) == []


def test_a_raw_window_runs_at_least_one_pass() -> None:
    calls: list[int] = []
    assert raw_window_ms(lambda: calls.append(1), 0.0) >= 0 and calls == [1]
