"""`densenet-server soak`: minutes of overload against the real server, then a SIGTERM under load.

1. Start the server (a child process on 127.0.0.1, with these settings) and make realistic 500x375
   JPEGs from real photos.
2. Capacity: closed-loop clients upload for ``capacity_s`` seconds; the answers per second are it.
3. Soak: open-loop uploads at ``overload`` x capacity for ``minutes``, recording each interval's
   statuses, throughput, p50/p99 latency and the server worker's memory (RSS).
4. Shutdown: a burst of uploads, SIGTERM while they are in flight, and what became of each; the exit code.

A command, not a test: it takes minutes, and it reports rather than asserts (its exit status says whether
the musts held). The client shares the machine with the server, as in any single-machine measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil

from ..config import Settings
from . import bench_images
from .bench import _server_environment, upload_requests  # the benchmark's: same server, same uploads
from .loadgen import (
    CONNECTION_ERROR,
    DISCONNECTED,
    TIMEOUT,
    LoadResult,
    RequestFactory,
    run_load,
    run_load_async,
    run_rate_async,
)
from .local_server import LocalServer

SHED = "503"
RSS_GROWTH_TARGET = 0.10
VERSIONS_OF = ("densenet-server", "onnxruntime", "torch", "pillow", "numpy", "flask", "gunicorn", "httpx")


@dataclass(frozen=True)
class SoakOptions:
    photos_dirs: Sequence[Path]
    minutes: float = 10.0
    overload: float = 2.0
    capacity_s: float = 30.0
    capacity_clients: int = 16
    interval_s: float = 60.0
    warmup_s: float = 5.0
    images: int = 48
    # Requests sent at once before the SIGTERM; the shutdown signal follows after sigterm_after_s.
    shutdown_burst: int = 96
    sigterm_after_s: float = 0.5


@dataclass(frozen=True)
class Interval:
    number: int
    seconds: float
    statuses: Counter[str]
    answered_ok_per_s: float
    p50_ms: float
    p99_ms: float
    worker_rss_mib: float

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True)
class Shutdown:
    burst: int
    in_flight_at_sigterm: int
    statuses: Counter[str]
    exit_code: int | None
    seconds_to_exit: float

    @property
    def lost(self) -> int:
        return self.statuses[DISCONNECTED] + self.statuses[TIMEOUT]


@dataclass(frozen=True)
class SoakReport:
    started: datetime
    settings: Settings
    options: SoakOptions
    capacity: LoadResult
    rate_per_s: float
    intervals: list[Interval]
    shutdown: Shutdown

    @property
    def capacity_per_s(self) -> float:
        return self.capacity.ok / self.capacity.seconds if self.capacity.seconds else 0.0

    @property
    def totals(self) -> Counter[str]:
        return sum((interval.statuses for interval in self.intervals), Counter())

    @property
    def shed(self) -> int:
        return self.totals[SHED]

    @property
    def server_errors(self) -> int:
        """5xx answers other than the 503s that shed load on purpose."""
        return sum(count for status, count in self.totals.items() if status.startswith("5") and status != SHED)

    @property
    def lost(self) -> int:
        """Requests that reached the server and never got an answer."""
        return self.totals[DISCONNECTED] + self.totals[TIMEOUT]

    @property
    def accepted(self) -> int:
        """Requests the server took on: neither shed with 503 nor refused at connection."""
        return sum(self.totals.values()) - self.shed - self.totals[CONNECTION_ERROR]

    @property
    def accepted_answered(self) -> float:
        return (self.accepted - self.lost) / self.accepted if self.accepted else float("nan")

    @property
    def rss_growth(self) -> float | None:
        """Worker RSS growth from the end of the second interval to the end of the last (None: too short)."""
        if len(self.intervals) < 3:
            return None
        baseline = self.intervals[1].worker_rss_mib
        return (self.intervals[-1].worker_rss_mib - baseline) / baseline

    @property
    def passed(self) -> bool:
        """The musts: every accepted request answered, no 5xx but shedding, a clean exit with nothing lost."""
        return (
            self.lost == 0
            and self.server_errors == 0
            and self.shutdown.lost == 0
            and self.shutdown.exit_code == 0
        )


def worker_rss_mib(server_pid: int) -> float:
    """Resident memory of the server's worker processes (the ones holding the model), in MiB."""
    children = psutil.Process(server_pid).children(recursive=True)
    return sum(child.memory_info().rss for child in children if child.is_running()) / 2**20


def _percentile_ms(latencies_s: Sequence[float], percentile: float) -> float:
    return float(np.percentile(np.asarray(latencies_s), percentile) * 1000.0) if latencies_s else float("nan")


async def _soak(
    server: LocalServer, make_request: RequestFactory, rate_per_s: float, options: SoakOptions,
    progress: Callable[[str], None],
) -> list[Interval]:
    duration_s = options.minutes * 60.0
    count = max(1, round(duration_s / options.interval_s))
    result = LoadResult(concurrency=0)
    load = asyncio.create_task(run_rate_async(server.base_url, make_request, rate_per_s, duration_s, result=result))
    started = time.monotonic()
    seen_statuses: Counter[str] = Counter()
    seen_latencies = seen_ok = 0
    previous_end = started
    intervals = []
    for number in range(1, count + 1):
        if number < count:
            await asyncio.sleep(max(0.0, started + number * options.interval_s - time.monotonic()))
        else:
            await load  # the last interval also takes the answers to what was still in flight
        now = time.monotonic()
        latencies = result.latencies_s[seen_latencies:]
        interval = Interval(
            number=number,
            seconds=now - previous_end,
            statuses=result.statuses - seen_statuses,
            answered_ok_per_s=(result.images_ok - seen_ok) / (now - previous_end),
            p50_ms=_percentile_ms(latencies, 50),
            p99_ms=_percentile_ms(latencies, 99),
            worker_rss_mib=worker_rss_mib(server.process.pid),
        )
        intervals.append(interval)
        progress(_interval_row(interval))
        seen_statuses, seen_latencies, seen_ok = result.statuses.copy(), len(result.latencies_s), result.images_ok
        previous_end = now
    return intervals


async def _shutdown_under_load(
    server: LocalServer, make_request: RequestFactory, options: SoakOptions, grace_s: float
) -> Shutdown:
    result = LoadResult(options.shutdown_burst)
    burst = asyncio.create_task(
        run_load_async(server.base_url, make_request, options.shutdown_burst, duration_s=120.0,
                       max_requests=options.shutdown_burst, result=result)
    )
    await asyncio.sleep(options.sigterm_after_s)
    in_flight = options.shutdown_burst - result.requests
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    await burst
    try:
        exit_code: int | None = await asyncio.to_thread(server.process.wait, grace_s + 30.0)
    except Exception:  # noqa: BLE001 - did not exit: reported as such, the LocalServer kills it on exit
        exit_code = None
    return Shutdown(options.shutdown_burst, in_flight, result.statuses, exit_code, time.monotonic() - signalled)


def run_soak(settings: Settings, options: SoakOptions, progress: Callable[[str], None] = print) -> SoakReport:
    started = datetime.now(timezone.utc)
    photos = bench_images.find_photos(options.photos_dirs)
    with tempfile.TemporaryDirectory(prefix="densenet-soak-") as temporary:
        images = bench_images.write_jpegs(photos, Path(temporary), bench_images.WEB_SIZE, "web", options.images)
        make_request = upload_requests(images)
        progress("starting the server ...")
        with LocalServer.start(["--images-dir", temporary], env=_server_environment(settings)) as server:
            run_load(server.base_url, make_request, options.capacity_clients, options.warmup_s)
            progress(f"capacity: {options.capacity_clients} closed-loop clients for {options.capacity_s:g} s ...")
            capacity = run_load(server.base_url, make_request, options.capacity_clients, options.capacity_s)
            rate = options.overload * capacity.ok / capacity.seconds
            progress(f"capacity {capacity.ok / capacity.seconds:.1f} requests/s; soaking at {rate:.1f}/s "
                     f"for {options.minutes:g} min ...")
            intervals = asyncio.run(_soak(server, make_request, rate, options, progress))
            progress(f"SIGTERM with a burst of {options.shutdown_burst} requests in flight ...")
            shutdown = asyncio.run(_shutdown_under_load(server, make_request, options, settings.shutdown_grace_s))
    return SoakReport(started, settings, options, capacity, rate, intervals, shutdown)


def _versions() -> str:
    found = []
    for name in VERSIONS_OF:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _statuses(statuses: Counter[str]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())) or "none"


def _interval_row(interval: Interval) -> str:
    other = interval.requests - interval.statuses["200"] - interval.statuses[SHED]
    return (
        f"| {interval.number} | {interval.seconds:.0f} | {interval.requests} | {interval.statuses['200']} "
        f"| {interval.statuses[SHED]} | {other} | {interval.answered_ok_per_s:.1f} | {interval.p50_ms:.0f} "
        f"| {interval.p99_ms:.0f} | {interval.worker_rss_mib:.0f} |"
    )


def format_report(report: SoakReport) -> str:
    settings, options, shutdown = report.settings, report.options, report.shutdown
    growth = report.rss_growth
    growth_text = "n/a (fewer than 3 intervals)" if growth is None else f"{growth:+.1%}"
    lines = [
        f"Run {report.started:%Y-%m-%d %H:%M} UTC on {_cpu_model()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}; {_versions()}.",
        "",
        f"Server: `densenet-server serve` on 127.0.0.1, max batch {settings.effective_max_batch_size()}, queue "
        f"{settings.effective_max_queue_images()} images, {settings.http_threads} HTTP threads, request deadline "
        f"{settings.request_timeout_s:g} s. Requests: uploads of 500x375 JPEGs made from real photos "
        "(`POST /inference`, raw body), from a client on the same machine.",
        "",
        f"Capacity: **{report.capacity_per_s:.1f} requests/s** ({options.capacity_clients} closed-loop clients, "
        f"{report.capacity.seconds:.0f} s; {_statuses(report.capacity.statuses)}). Offered during the soak: "
        f"**{report.rate_per_s:.1f} requests/s** ({options.overload:g} x capacity, open loop) for "
        f"{options.minutes:g} min.",
        "",
        f"| interval ({options.interval_s:g} s) | seconds | requests | 200 | 503 shed | other | answered/s "
        "| p50 ms | p99 ms | worker RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_interval_row(interval) for interval in report.intervals),
        "",
        f"- accepted requests answered: **{report.accepted_answered:.2%}** ({report.accepted - report.lost} of "
        f"{report.accepted}; must be 100%)",
        f"- shed with 503 and Retry-After: {report.shed} of {sum(report.totals.values())} "
        f"({report.shed / max(1, sum(report.totals.values())):.1%})",
        f"- 5xx other than 503: **{report.server_errors}** (must be 0); all outcomes: {_statuses(report.totals)}",
        f"- worker RSS growth from the end of interval 2 to the end: **{growth_text}** "
        f"(target < {RSS_GROWTH_TARGET:.0%})",
        f"- shutdown: SIGTERM {options.sigterm_after_s:g} s into a burst of {shutdown.burst} uploads, "
        f"{shutdown.in_flight_at_sigterm} of them still unanswered then; outcomes {_statuses(shutdown.statuses)}; "
        f"lost: **{shutdown.lost}**; exit code **{shutdown.exit_code}** after {shutdown.seconds_to_exit:.1f} s",
    ]
    return "\n".join(lines)


def run_from_cli(settings: Settings, args: argparse.Namespace) -> int:
    """`densenet-server soak`: run, print the report (and write it to --output); exit 1 if a must failed."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would bury the progress
    options = SoakOptions(
        photos_dirs=args.photos, minutes=args.minutes, overload=args.overload, capacity_s=args.capacity_s,
        capacity_clients=args.capacity_clients, interval_s=args.interval_s,
    )
    report = run_soak(settings, options, progress=lambda line: print(line, file=sys.stderr, flush=True))
    text = format_report(report)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0 if report.passed else 1
