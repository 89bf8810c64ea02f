"""Closed-loop load from wrk (a compiled generator) for `densenet-server bench --load-generator wrk`.

At thousands of requests/s the Python generator (loadgen, one asyncio thread) can use a whole core and
become the limit itself; wrk, written in C with one event loop per thread, costs far less per request.
The scenarios are the same: ``concurrency`` connections, each sending its next request when the last one
is answered, for a fixed time. The requests come from a Lua script generated here, which cycles through
the same requests (GET paths, or raw-body uploads read from files) as the Python generator does.

wrk reports its own summary; parse_output() turns it into a LoadResult so that the report is the same
table. What differs: wrk gives latency only at fixed percentiles (50/75/90/99), over every answer, not
only the 2xx ones; it counts 3xx as success (the server sends none); and it only takes whole seconds.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .loadgen import CONNECTION_ERROR, DISCONNECTED, TIMEOUT, LoadResult, RequestSpec

# wrk's "Non-2xx or 3xx responses" count, as a status that LoadResult.failed counts (not starting with "2").
NON_2XX = "non-2xx/3xx"
# Answers wrk counted as success: LoadResult.ok counts statuses that start with "2".
SUCCESS = "2xx/3xx"

_TIME_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class WrkMissing(RuntimeError):
    pass


def find_wrk() -> str:
    """The wrk executable, or WrkMissing saying how to get it."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(
            "--load-generator wrk needs the 'wrk' program on PATH, and there is none: install it "
            "(Debian/Ubuntu: apt-get install wrk) or use --load-generator python"
        )
    return path


def wrk_version(executable: str) -> str:
    # `wrk -v` prints its version and then its usage, exiting 1: the first line is all we want.
    completed = subprocess.run([executable, "-v"], capture_output=True, text=True, check=False)
    first = (completed.stdout or completed.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


@dataclass
class WrkResult(LoadResult):
    """A LoadResult whose latencies are wrk's percentiles (it gives no per-request latencies)."""

    percentiles_ms: dict[float, float] = field(default_factory=dict)

    def latency_ms(self, percentile: float) -> float:
        if self.ok == 0:
            return float("nan")  # as LoadResult: no latency without a successful answer
        return self.percentiles_ms.get(percentile, float("nan"))


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk time: {text!r}")
    return float(match.group(1)) * _TIME_UNITS_S[match.group(2)]


def parse_output(text: str, concurrency: int, images_per_request: int = 1) -> WrkResult:
    """wrk's summary (run with --latency) as a WrkResult; ValueError if it is not one."""
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", text, re.MULTILINE)
    if total is None:
        raise ValueError(f"no 'N requests in T' line in wrk's output:\n{text}")
    answered, seconds = int(total.group(1)), _seconds(total.group(2))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    failed_answers = int(non_2xx.group(1)) if non_2xx else 0
    statuses: Counter[str] = Counter()
    if answered - failed_answers:
        statuses[SUCCESS] = answered - failed_answers
    if failed_answers:
        statuses[NON_2XX] = failed_answers
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket:
        connect, read, write, timeout = (int(group) for group in socket.groups())
        # The same outcomes as the Python generator's: never connected / broke before an answer / too slow.
        for status, count in ((CONNECTION_ERROR, connect), (DISCONNECTED, read + write), (TIMEOUT, timeout)):
            if count:
                statuses[status] += count
    distribution = text.split("Latency Distribution", 1)
    percentiles = {}
    if len(distribution) == 2:
        for percent, value in re.findall(r"^\s*([\d.]+)%\s+([\d.]+\w+)\s*$", distribution[1], re.MULTILINE):
            percentiles[float(percent)] = _seconds(value) * 1000.0
    return WrkResult(
        concurrency,
        seconds=seconds,
        statuses=statuses,
        images_ok=statuses[SUCCESS] * images_per_request,
        percentiles_ms=percentiles,
    )


def _lua_string(text: str) -> str:
    """A Lua string literal for ``text``: every byte that is not plain printable ASCII as a \\ddd escape."""
    escaped = "".join(
        chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\' else f"\\{byte:03d}" for byte in text.encode()
    )
    return f'"{escaped}"'


def lua_script(specs: Sequence[RequestSpec], body_files: Sequence[Path | None]) -> str:
    """A wrk script that sends ``specs`` in turn, each connection's thread cycling from the first.

    Bodies are read from ``body_files`` (one per spec, None for none) when each thread starts, and every
    request is formatted once there: per request wrk then only hands over a prepared string.
    """
    if len(specs) != len(body_files) or not specs:
        raise ValueError("one body file (or None) per request, and at least one request")
    entries = []
    for spec, body_file in zip(specs, body_files, strict=True):
        headers = ", ".join(f"[{_lua_string(name)}] = {_lua_string(value)}" for name, value in spec.headers.items())
        body = "nil" if body_file is None else _lua_string(str(body_file))
        entries.append(f"  {{method = {_lua_string(spec.method)}, path = {_lua_string(spec.path)}, headers = {{{headers}}}, body = {body}}},")
    return "\n".join(
        [
            "-- Generated by densenet-server bench: cycles through these requests.",
            "local specs = {",
            *entries,
            "}",
            "local prepared = {}",
            "local next_index = 0",
            "",
            "local function read_file(path)",
            '  local file = assert(io.open(path, "rb"))',
            '  local content = file:read("*a")',
            "  file:close()",
            "  return content",
            "end",
            "",
            "function init(args)",
            "  for i, spec in ipairs(specs) do",
            "    local body = spec.body and read_file(spec.body) or nil",
            "    prepared[i] = wrk.format(spec.method, spec.path, spec.headers, body)",
            "  end",
            "end",
            "",
            "function request()",
            "  next_index = next_index % #prepared + 1",
            "  return prepared[next_index]",
            "end",
            "",
        ]
    )


def _images_per_request(specs: Sequence[RequestSpec]) -> int:
    counts = {spec.images for spec in specs}
    if len(counts) != 1:
        # wrk counts answers, not which request each answered: img/s needs the same count in every request.
        raise ValueError(f"wrk scenarios need the same number of images in every request, not {sorted(counts)}")
    return counts.pop()


def max_threads() -> int:
    """wrk's threads at most: one event loop per core; more only share the same cores."""
    return os.cpu_count() or 1


def threads_for(concurrency: int) -> int:
    """wrk's -t for ``concurrency`` connections: never more threads than connections (wrk refuses that)."""
    return max(1, min(concurrency, max_threads()))


def run_wrk(
    base_url: str,
    specs: Sequence[RequestSpec],
    concurrency: int,
    duration_s: float,
    timeout_s: float = 60.0,
    executable: str | None = None,
) -> WrkResult:
    """Drive ``base_url`` with wrk: ``concurrency`` connections cycling through ``specs`` for ``duration_s``
    (rounded up to whole seconds: wrk takes no fractions). The result carries wrk's own CPU seconds."""
    executable = executable or find_wrk()
    images = _images_per_request(specs)
    with tempfile.TemporaryDirectory(prefix="densenet-wrk-") as temporary:
        directory = Path(temporary)
        body_files: list[Path | None] = []
        for number, spec in enumerate(specs):
            if spec.content is None:
                body_files.append(None)
                continue
            body_file = directory / f"body-{number}"
            body_file.write_bytes(spec.content)
            body_files.append(body_file)
        script = directory / "requests.lua"
        script.write_text(lua_script(specs, body_files), encoding="utf-8")
        command = [
            executable,
            f"-t{threads_for(concurrency)}",
            f"-c{concurrency}",
            f"-d{max(1, math.ceil(duration_s))}s",
            f"--timeout={max(1, math.ceil(timeout_s))}s",
            "--latency",
            "-s",
            str(script),
            base_url,
        ]
        output, cpu_s, wall_s = _run_measured(command)
    result = parse_output(output, concurrency, images)
    result.client_cpu_s = cpu_s
    result.client_wall_s = wall_s
    return result


def _run_measured(command: Sequence[str]) -> tuple[str, float, float]:
    """Run ``command``; its output, the CPU seconds it used (all its threads) and its wall seconds.

    os.wait4 gives the resource use of exactly this child, where RUSAGE_CHILDREN would also count every
    other child this process has reaped (the benchmark starts servers as children)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed (exit status {process.returncode}): {' '.join(command)}\n{output}")
    return output, usage.ru_utime + usage.ru_stime, wall_s
