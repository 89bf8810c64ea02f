"""The benchmark's wrk load generator and the client CPU column: wrk's summary parsed into the report's
numbers, the Lua script it runs, the CPU-use figure, and one real short wrk run (skipped without wrk)."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from densenet_server.config import Settings
from densenet_server.tooling.bench import (
    BenchOptions, RequestCycle, Scenario, client_cpu_cell, describe_load_generator, drive, format_report,
)
from densenet_server.tooling.loadgen import CONNECTION_ERROR, DISCONNECTED, TIMEOUT, LoadResult, RequestSpec
from densenet_server.tooling.wrk import NON_2XX, WrkMissing, find_wrk, lua_script, parse_output, run_wrk, threads_for

# Real outputs of wrk 4.1.0 (Debian 4.1.0-3+b2), captured against a small local HTTP server.
ALL_OK = """\
Running 1s test @ http://127.0.0.1:18765/ok
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   272.33us  493.99us   5.89ms   93.62%
    Req/Sec    11.77k     4.62k   24.05k    66.67%
  Latency Distribution
     50%  151.00us
     75%  204.00us
     90%  373.00us
     99%    2.77ms
  24545 requests in 1.10s, 1.05MB read
Requests/sec:  22314.79
Transfer/sec:      0.96MB
"""
ALL_500 = """\
Running 1s test @ http://127.0.0.1:18765/bad
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   123.82us  448.08us   8.68ms   98.47%
    Req/Sec    24.18k     1.03k   25.11k    72.73%
  Latency Distribution
     50%   74.00us
     75%   77.00us
     90%   91.00us
     99%    1.89ms
  26448 requests in 1.10s, 1.14MB read
  Non-2xx or 3xx responses: 26448
Requests/sec:  24058.55
Transfer/sec:      1.03MB
"""
HUNG_UP = """\
Running 1s test @ http://127.0.0.1:18765/closeall
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 0, read 760, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


def test_a_clean_run_parses_to_requests_rate_and_percentiles() -> None:
    result = parse_output(ALL_OK, concurrency=4, images_per_request=2)
    assert (result.requests, result.ok, result.failed) == (24545, 24545, 0)
    assert result.seconds == pytest.approx(1.10)
    assert result.images_per_s == pytest.approx(2 * 24545 / 1.10)
    assert result.latency_ms(50) == pytest.approx(0.151)
    assert result.latency_ms(90) == pytest.approx(0.373)
    assert result.latency_ms(99) == pytest.approx(2.77)
    assert result.latency_ms(95) != result.latency_ms(95)  # NaN: wrk prints no 95th percentile


def test_non_2xx_answers_are_failures_without_latency() -> None:
    result = parse_output(ALL_500, concurrency=2)
    assert result.statuses == Counter({NON_2XX: 26448})
    assert (result.ok, result.failed, result.images_per_s) == (0, 26448, 0.0)
    assert result.latency_ms(50) != result.latency_ms(50)  # as loadgen: no latency without a 2xx answer


def test_socket_errors_are_counted_as_the_python_generator_counts_them() -> None:
    result = parse_output(HUNG_UP, concurrency=2)
    assert result.statuses == Counter({DISCONNECTED: 760})
    mixed = ALL_OK.replace("Requests/sec", "  Socket errors: connect 3, read 1, write 2, timeout 4\nRequests/sec")
    statuses = parse_output(mixed, concurrency=4).statuses
    assert (statuses[CONNECTION_ERROR], statuses[DISCONNECTED], statuses[TIMEOUT]) == (3, 3, 4)
    assert parse_output(mixed, concurrency=4).requests == 24545 + 10


def test_output_that_is_not_a_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="requests in"):
        parse_output("unable to connect to 127.0.0.1:18799 Connection refused", concurrency=1)


def test_the_lua_script_prepares_every_request_once_and_cycles(tmp_path: Path) -> None:
    specs = [
        RequestSpec("GET", "/inference/a b.jpg"),
        RequestSpec("POST", "/inference", b"\xff\xd8", {"Content-Type": "image/jpeg"}),
    ]
    body = tmp_path / 'odd "name"\\.jpg'
    script = lua_script(specs, [None, body])
    assert '{method = "GET", path = "/inference/a b.jpg", headers = {}, body = nil},' in script
    assert '[\"Content-Type\"] = "image/jpeg"' in script
    # Quotes and backslashes in a path are escaped, so the script stays valid Lua whatever the temp dir.
    assert '\\034name\\034\\092.jpg"' in script
    assert "wrk.format(spec.method, spec.path, spec.headers, body)" in script
    assert "next_index % #prepared + 1" in script
    with pytest.raises(ValueError):
        lua_script(specs, [None])


def test_client_cpu_percent_is_cpu_time_over_wall_time() -> None:
    assert LoadResult(1, seconds=4.0, client_cpu_s=3.0).client_cpu_percent == pytest.approx(75.0)
    # wrk's CPU is over its process's lifetime, which is its own wall time, not the measured seconds.
    assert LoadResult(1, seconds=2.0, client_cpu_s=3.0, client_wall_s=2.5).client_cpu_percent == pytest.approx(120.0)
    assert client_cpu_cell(LoadResult(1, seconds=2.0, client_cpu_s=1.0)) == "50"
    assert client_cpu_cell(LoadResult(1, seconds=2.0)) == "n/a"


def test_the_report_has_the_client_cpu_column_and_names_the_generator() -> None:
    result = LoadResult(1, seconds=1.0, latencies_s=[0.005], statuses=Counter({"200": 1}), images_ok=1, client_cpu_s=0.42)
    report = format_report(Settings(), [], [], [Scenario("GET x", 1, result, 100.0)], 1.0, load_generator="wrk 4.1.0")
    assert "Load generator: wrk 4.1.0." in report
    assert "| peak RSS MiB | client CPU % |" in report
    assert "| GET x | 1 | 1 | 0 | 1.0 | 5.0 | 5.0 | 5.0 | 100 | 42 |" in report


def test_wrk_threads_never_outnumber_connections() -> None:
    assert threads_for(1) == 1
    assert 1 <= threads_for(10_000) <= 10_000


def test_a_missing_wrk_is_named_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(WrkMissing, match="apt-get install wrk"):
        describe_load_generator("wrk")
    with pytest.raises(ValueError, match="unknown load generator"):
        describe_load_generator("ab")


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 to anything (500 under /bad) and remembers each request's path and body length."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, int]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, len(body)))
        status = 500 if self.path.startswith("/bad") else 200
        # One write: separate header and body writes meet delayed ACKs and cost ~40 ms per answer.
        self.wfile.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % status)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


@needs_wrk
def test_a_real_wrk_run_cycles_through_the_uploads_and_measures_itself(recorder: str) -> None:
    specs = [RequestSpec("POST", f"/up/{n}", b"x" * n, {"Content-Type": "image/jpeg"}) for n in (10, 20, 30)]
    result = run_wrk(recorder, specs, concurrency=2, duration_s=1.0)
    assert result.requests > 0 and result.failed == 0 and result.images_per_s > 0
    assert 0 < result.latency_ms(50) <= result.latency_ms(99)
    assert result.client_cpu_s is not None and result.client_cpu_percent > 0
    assert {(method, path, length) for method, path, length in _Recorder.seen} == {
        ("POST", "/up/10", 10), ("POST", "/up/20", 20), ("POST", "/up/30", 30)
    }


@needs_wrk
def test_drive_with_wrk_reports_non_2xx_answers(recorder: str) -> None:
    options = BenchOptions(photos_dirs=[], duration_s=1.0, warmup_s=1.0, load_generator="wrk")
    # The recording server runs in this process: its RSS is this process's.
    scenario = drive(recorder, os.getpid(), "bad", RequestCycle([RequestSpec("GET", "/bad")]), 1, options)
    assert scenario.result.requests > 0 and scenario.result.ok == 0
    assert scenario.result.client_cpu_percent > 0
    assert describe_load_generator("wrk").startswith("wrk ") and find_wrk()
