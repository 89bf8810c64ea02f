"""End-to-end figures against the raw model's, measured in alternating windows.

A cloud VM may change speed for tens of seconds at a time (the 2-core development machine switches between
about 30 and 50 ms per batch-1 pass), so a raw figure taken minutes before an HTTP scenario can fall in the
other phase, and "p50 − raw bs1" or "img/s ÷ raw best" then measure the machine, not the server. Here every
window over HTTP sits between two raw windows a few seconds apart, and each round is taken against the mean
of its two neighbours; the median over rounds is reported, with the spread. Two pairings:

- latency: one client's p50 against the raw batch-1 latency (a difference, in ms);
- throughput: many clients' img/s against the raw best layout's img/s (a ratio).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .loadgen import LoadResult

# A window long enough for tens of passes at 30-50 ms, short against the machine's phases.
DEFAULT_WINDOW_S = 2.0
DEFAULT_ROUNDS = 5
# Many clients need longer windows: each starts with a queue to fill.
THROUGHPUT_WINDOW_S = 4.0
THROUGHPUT_ROUNDS = 3

# A window's figure for the seconds given.
Window = Callable[[float], float]


@dataclass(frozen=True)
class PairedRound:
    raw_before: float
    measured: float
    raw_after: float

    @property
    def raw(self) -> float:
        return (self.raw_before + self.raw_after) / 2

    @property
    def difference(self) -> float:
        return self.measured - self.raw

    @property
    def ratio(self) -> float:
        return self.measured / self.raw if self.raw > 0 else float("nan")


@dataclass(frozen=True)
class PairedScenario:
    name: str
    rounds: Sequence[PairedRound]

    @property
    def difference(self) -> float:
        """The median over rounds of the measured figure minus the raw one around it."""
        return statistics.median(r.difference for r in self.rounds)

    @property
    def ratio(self) -> float:
        """The median over rounds of the measured figure over the raw one around it."""
        return statistics.median(r.ratio for r in self.rounds)


def measure_paired(raw: Window, measured: dict[str, Window], rounds: int, window_s: float) -> list[PairedScenario]:
    """For each round and each scenario in turn: a raw window, the scenario's window, a raw window again.
    A raw window is shared by the scenarios on its two sides, so the windows alternate raw, GET, raw, POST,
    raw, ..."""
    collected: dict[str, list[PairedRound]] = {name: [] for name in measured}
    before = raw(window_s)
    for _ in range(rounds):
        for name, window in measured.items():
            figure = window(window_s)
            after = raw(window_s)
            collected[name].append(PairedRound(before, figure, after))
            before = after
    return [PairedScenario(name, found) for name, found in collected.items()]


def raw_latency(one_pass: Callable[[], object]) -> Window:
    """The median wall time in ms of back-to-back ``one_pass`` calls over a window (at least one call)."""
    one_pass()  # the first pass pays for lazy initialisation

    def window(seconds: float) -> float:
        timings = []
        deadline = time.perf_counter() + seconds
        while not timings or time.perf_counter() < deadline:
            started = time.perf_counter()
            one_pass()
            timings.append(time.perf_counter() - started)
        return statistics.median(timings) * 1000.0

    return window


def raw_rate(lanes: Sequence[Callable[[np.ndarray], object]], batch: np.ndarray) -> Window:
    """Images a second over a window, every lane passing ``batch`` at once, round after round."""
    pool = ThreadPoolExecutor(len(lanes), thread_name_prefix="raw-lane")

    def all_lanes_once() -> None:
        list(pool.map(lambda lane: lane(batch), lanes))

    all_lanes_once()

    def window(seconds: float) -> float:
        passes = 0
        started = time.perf_counter()
        while not passes or time.perf_counter() - started < seconds:
            all_lanes_once()
            passes += 1
        return passes * len(lanes) * len(batch) / (time.perf_counter() - started)

    return window


def client_p50(load: Callable[[float], LoadResult]) -> Window:
    return lambda seconds: load(seconds).latency_ms(50)


def client_rate(load: Callable[[float], LoadResult]) -> Window:
    return lambda seconds: load(seconds).images_per_s


def latency_table(scenarios: Sequence[PairedScenario], window_s: float) -> list[str]:
    heading = f"One client against raw batch-1, paired ({window_s:g} s windows, raw before and after each)"
    columns = ("raw bs1 ms (median)", "p50 ms (median)", "p50 − raw bs1 ms (median)", "range ms")
    return _table(heading, columns, scenarios, lambda r: r.difference, "+.1f")


def throughput_table(scenarios: Sequence[PairedScenario], window_s: float, clients: int, raw_layout: str) -> list[str]:
    heading = (
        f"{clients} clients against the raw best, paired ({window_s:g} s windows, raw before and after each; "
        f"raw: {raw_layout})"
    )
    columns = ("raw img/s (median)", "img/s (median)", "img/s ÷ raw (median)", "range")
    return _table(heading, columns, scenarios, lambda r: r.ratio, ".2f")


def _table(
    heading: str, columns: Sequence[str], scenarios: Sequence[PairedScenario], compare: Callable[[PairedRound], float],
    compared_format: str,
) -> list[str]:
    """A Markdown table, a row per scenario: rounds, the median raw and measured figures, the median of
    ``compare`` over the rounds and its range."""
    if not scenarios:
        return []
    lines = [f"### {heading}", "", "| scenario | rounds | " + " | ".join(columns) + " |", "| --- " * (len(columns) + 2) + "|"]
    for scenario in scenarios:
        compared = [compare(r) for r in scenario.rounds]
        lines.append(
            f"| {scenario.name} | {len(compared)} | {statistics.median(r.raw for r in scenario.rounds):.1f} "
            f"| {statistics.median(r.measured for r in scenario.rounds):.1f} "
            f"| {statistics.median(compared):{compared_format}} "
            f"| {min(compared):{compared_format}} to {max(compared):{compared_format}} |"
        )
    return lines
