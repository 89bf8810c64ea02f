"""A small HTTP load generator for the benchmark and soak commands (not used by the server).

Closed loop (run_load): ``concurrency`` clients each send one request, wait for its answer, and send the
next, until the time budget or the request budget is spent. Open loop (run_rate): requests start at a
fixed rate whatever the answers, as independent users do; the way to offer a server more than it can
take. Every answer is counted by status, so non-2xx answers and connection failures are never hidden in
a throughput figure; a connection that breaks after the request went out (DISCONNECTED: possibly
accepted, certainly unanswered) is told apart from one that never opened (CONNECTION_ERROR).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import numpy as np


@dataclass(frozen=True)
class RequestSpec:
    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Counted as images for img/s: a multi-image upload counts each of its images.
    images: int = 1


# Given the running request number, the request to send (so callers can cycle through images).
RequestFactory = Callable[[int], RequestSpec]

CONNECTION_ERROR = "connection_error"  # no connection: refused or unreachable; the server never saw it
DISCONNECTED = "disconnected"  # the connection broke before an answer came
TIMEOUT = "timeout"
GRPC_OK = "OK"  # a gRPC call's success (grpc_load.py); its failures are counted by status code


@dataclass
class LoadResult:
    concurrency: int
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    images_ok: int = 0
    # The load generator's own CPU seconds (all its threads) over the measured window, and that window's
    # wall seconds when it is not ``seconds``: so a report can show when the client, not the server, was
    # the limit. None where nobody measured it.
    client_cpu_s: float | None = None
    client_wall_s: float | None = None

    @property
    def client_cpu_percent(self) -> float:
        """The generator's CPU use as % of one core (100 = one core busy all the time); NaN if unmeasured."""
        wall_s = self.client_wall_s if self.client_wall_s is not None else self.seconds
        if self.client_cpu_s is None or not wall_s:
            return float("nan")
        return 100.0 * self.client_cpu_s / wall_s

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("2") or status == GRPC_OK)

    @property
    def failed(self) -> int:
        """Every answer that is not 2xx, plus connection errors and client timeouts."""
        return self.requests - self.ok

    @property
    def images_per_s(self) -> float:
        return self.images_ok / self.seconds if self.seconds else 0.0

    def latency_ms(self, percentile: float) -> float:
        """Latency of the successful requests at ``percentile`` (0-100), in milliseconds."""
        if not self.latencies_s:
            return float("nan")
        return float(np.percentile(np.asarray(self.latencies_s), percentile) * 1000.0)


async def _send(client: httpx.AsyncClient, spec: RequestSpec, result: LoadResult) -> str:
    """Send one request and count its outcome in ``result``; returns the status it was counted as."""
    started = time.perf_counter()
    try:
        response = await client.request(spec.method, spec.path, content=spec.content, headers=spec.headers)
        await response.aread()
    except httpx.TimeoutException:
        status = TIMEOUT
    except httpx.ConnectError:
        status = CONNECTION_ERROR
    except httpx.TransportError:
        status = DISCONNECTED
    else:
        status = str(response.status_code)
        if status.startswith("2"):
            result.latencies_s.append(time.perf_counter() - started)
            result.images_ok += spec.images
    result.statuses[status] += 1
    return status


async def _client_loop(
    client: httpx.AsyncClient,
    make_request: RequestFactory,
    counter: list[int],
    deadline: float,
    max_requests: int | None,
    result: LoadResult,
) -> None:
    while time.monotonic() < deadline and (max_requests is None or counter[0] < max_requests):
        spec = make_request(counter[0])
        counter[0] += 1
        if await _send(client, spec, result) in (CONNECTION_ERROR, DISCONNECTED):
            # A refused connection returns at once; don't spin on a server that is down.
            await asyncio.sleep(0.05)


async def run_load_async(
    base_url: str,
    make_request: RequestFactory,
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    timeout_s: float = 60.0,
    result: LoadResult | None = None,
) -> LoadResult:
    """run_load() in a running event loop; counts into ``result`` as answers come, if one is given."""
    result = result if result is not None else LoadResult(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:
        counter = [0]
        return await run_closed_loop(
            concurrency, duration_s, result,
            lambda deadline: _client_loop(client, make_request, counter, deadline, max_requests, result),
        )


async def run_closed_loop(
    concurrency: int, duration_s: float, result: LoadResult, client_loop: Callable[[float], Awaitable[None]]
) -> LoadResult:
    """Run ``concurrency`` clients, each ``client_loop(deadline)`` (a time.monotonic() ``duration_s`` from
    now), at once; count their wall time and this process's CPU time into ``result``."""
    started = time.monotonic()
    # This whole process's CPU time, every thread: the generator is one event loop, so near 100% means
    # it, not the server, set the pace (anything else running in the process is counted too).
    cpu_started = time.process_time()
    await asyncio.gather(*(client_loop(started + duration_s) for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    result.client_cpu_s = time.process_time() - cpu_started
    return result


def run_load(
    base_url: str,
    make_request: RequestFactory,
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    timeout_s: float = 60.0,
) -> LoadResult:
    """Drive ``base_url`` with ``concurrency`` closed-loop clients for at most ``duration_s`` seconds."""
    return asyncio.run(run_load_async(base_url, make_request, concurrency, duration_s, max_requests, timeout_s))


async def run_rate_async(
    base_url: str,
    make_request: RequestFactory,
    rate_per_s: float,
    duration_s: float,
    max_in_flight: int = 1024,
    timeout_s: float = 60.0,
    result: LoadResult | None = None,
) -> LoadResult:
    """Start a request every 1/``rate_per_s`` seconds for ``duration_s`` seconds, whatever the answers
    (open loop), then wait for the last answers. Counts into ``result`` as answers come, if one is given.
    At most ``max_in_flight`` connections: beyond that, requests wait for one, and that wait is part of
    their latency, as it would be for a user."""
    result = result if result is not None else LoadResult(max_in_flight)
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:
        started = time.monotonic()
        in_flight: set[asyncio.Task[str]] = set()
        number = 0
        # Start times follow the schedule, not the previous request: a slow answer delays nothing else.
        while (due := number / rate_per_s) < duration_s:
            await asyncio.sleep(max(0.0, started + due - time.monotonic()))
            task = asyncio.create_task(_send(client, make_request(number), result))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            number += 1
        await asyncio.gather(*in_flight)
        result.seconds = time.monotonic() - started
    return result
