"""One client's latency over HTTP against the raw model's batch-1 latency, measured in alternating windows.

A cloud VM may change speed for tens of seconds at a time (the 2-core development machine switches between
about 30 and 50 ms per batch-1 pass), so a raw figure taken minutes before an HTTP scenario can fall in the
other phase, and "p50 − raw bs1" then measures the machine, not the server. Here every window of one client
over HTTP sits between two windows of raw batch-1 passes a few seconds apart, and each round's difference
is taken against the mean of its two neighbours; the median over rounds is reported, with the spread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .loadgen import LoadResult

# A window long enough for tens of passes at 30-50 ms, short against the machine's phases.
DEFAULT_WINDOW_S = 2.0
DEFAULT_ROUNDS = 5


@dataclass(frozen=True)
class PairedRound:
    raw_before_ms: float
    client_p50_ms: float
    raw_after_ms: float

    @property
    def over_raw_ms(self) -> float:
        return self.client_p50_ms - (self.raw_before_ms + self.raw_after_ms) / 2


@dataclass(frozen=True)
class PairedScenario:
    name: str
    rounds: Sequence[PairedRound]

    @property
    def over_raw_ms(self) -> float:
        """The median over rounds of p50 minus the raw batch-1 latency around it."""
        return statistics.median(r.over_raw_ms for r in self.rounds)


def raw_window_ms(one_pass: Callable[[], object], window_s: float) -> float:
    """The median wall time of back-to-back ``one_pass`` calls over ``window_s`` seconds (at least one)."""
    timings = []
    deadline = time.perf_counter() + window_s
    while not timings or time.perf_counter() < deadline:
        started = time.perf_counter()
        one_pass()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000.0


def measure_paired(
    one_pass: Callable[[], object],
    one_client: dict[str, Callable[[float], LoadResult]],
    rounds: int = DEFAULT_ROUNDS,
    window_s: float = DEFAULT_WINDOW_S,
) -> list[PairedScenario]:
    """For each round and each scenario in turn: raw batch-1 passes, one client's requests (``one_client``
    runs them for the seconds given), raw passes again. A raw window is shared by the scenarios on its two
    sides, so the windows alternate raw, GET, raw, POST, raw, ..."""
    one_pass()  # the first pass pays for lazy initialisation
    collected: dict[str, list[PairedRound]] = {name: [] for name in one_client}
    before = raw_window_ms(one_pass, window_s)
    for _ in range(rounds):
        for name, load in one_client.items():
            result = load(window_s)
            after = raw_window_ms(one_pass, window_s)
            collected[name].append(PairedRound(before, result.latency_ms(50), after))
            before = after
    return [PairedScenario(name, found) for name, found in collected.items()]


def paired_table(scenarios: Sequence[PairedScenario], window_s: float) -> list[str]:
    if not scenarios:
        return []
    lines = [
        f"### One client against raw batch-1, paired ({window_s:g} s windows, raw before and after each)",
        "",
        "| scenario | rounds | raw bs1 ms (median) | p50 ms (median) | p50 − raw bs1 ms (median) | range ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in scenarios:
        raws = [(r.raw_before_ms + r.raw_after_ms) / 2 for r in scenario.rounds]
        deltas = [r.over_raw_ms for r in scenario.rounds]
        lines.append(
            f"| {scenario.name} | {len(scenario.rounds)} | {statistics.median(raws):.1f} "
            f"| {statistics.median(r.client_p50_ms for r in scenario.rounds):.1f} | {scenario.over_raw_ms:+.1f} "
            f"| {min(deltas):+.1f} to {max(deltas):+.1f} |"
        )
    return lines
