"""`densenet-server soak`: a few seconds of it end to end, and the arithmetic of its report."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from support.server_process import server_command

from densenet_server.config import Settings
from densenet_server.tooling.loadgen import CONNECTION_ERROR, DISCONNECTED, LoadResult
from densenet_server.tooling.soak import Interval, Shutdown, SoakOptions, SoakReport, format_report

REPO_IMAGES = Path(__file__).resolve().parents[2] / "images"


def test_a_short_soak_runs_end_to_end_and_writes_its_report(checkpoint_path: Path, tmp_path: Path) -> None:
    report_file = tmp_path / "reliability.md"
    result = subprocess.run(
        [*server_command(), "soak", "--weights", str(checkpoint_path), "--minutes", "0.1", "--interval-s", "3",
         "--capacity-s", "2", "--capacity-clients", "4", "--photos", str(REPO_IMAGES), "--output", str(report_file)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = report_file.read_text()
    assert report.strip() == result.stdout.strip()
    assert "accepted requests answered: **100.00%**" in report
    assert "5xx other than 503: **0**" in report
    assert "lost: **0**; exit code **0**" in report
    rows = [line for line in report.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2


def interval(number: int, rss_mib: float, **statuses: int) -> Interval:
    return Interval(number, 60.0, Counter(statuses), 10.0, 100.0, 900.0, rss_mib)


def report_of(intervals: list[Interval], shutdown_statuses: Counter[str] | None = None) -> SoakReport:
    shutdown = Shutdown(8, 5, shutdown_statuses or Counter({"200": 8}), 0, 1.5)
    capacity = LoadResult(4, seconds=10.0, statuses=Counter({"200": 300}))
    return SoakReport(datetime.now(timezone.utc), Settings(), SoakOptions([REPO_IMAGES]), capacity, 60.0, intervals, shutdown)


def test_the_report_counts_shed_lost_and_server_errors_apart() -> None:
    report = report_of([
        interval(1, 1000.0, **{"200": 600, "503": 590, "400": 10}),
        interval(2, 1000.0, **{"200": 600, "503": 600, CONNECTION_ERROR: 3}),
        interval(3, 1050.0, **{"200": 590, "503": 600, DISCONNECTED: 1, "504": 2}),
    ])
    assert report.capacity_per_s == 30.0
    assert report.shed == 1790
    assert report.accepted == 600 + 10 + 600 + 590 + 1 + 2  # neither shed nor refused at connection
    assert report.lost == 1 and report.server_errors == 2
    assert report.accepted_answered == (report.accepted - 1) / report.accepted
    assert report.rss_growth == 0.05  # from the end of interval 2
    assert not report.passed
    text = format_report(report)
    assert "5xx other than 503: **2**" in text and "+5.0%" in text


def test_a_clean_run_passes_and_a_lost_request_at_shutdown_fails_it() -> None:
    clean = [interval(1, 900.0, **{"200": 100, "503": 90}), interval(2, 900.0, **{"200": 100})]
    assert report_of(clean).passed
    assert report_of(clean).rss_growth is None  # too short to say
    assert not report_of(clean, Counter({"200": 7, DISCONNECTED: 1})).passed
