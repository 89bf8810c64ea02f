"""`densenet-server bench`: the raw model and the whole server, measured in one run, as ratios.

1. Raw: each installed fp32 backend in this process (and bf16 when asked): batch-1 latency, and
   throughput at each batch size, on real preprocessed photos.
2. End to end: the real server (a child process on 127.0.0.1, same settings) driven over HTTP with
   realistic JPEGs (500x375 web photos; 12-MP phone photos) by closed-loop clients at several
   concurrencies, through GET /inference/<file> and uploads (POST /inference with the image as the body);
   and the same 16-image requests through the Open Inference Protocol v2 over HTTP (binary tensor data,
   as tritonclient.http sends it) and over gRPC (tritonclient.grpc, grpc_load.py), as the ratio gRPC / HTTP.
3. A table: img/s, p50/p90/p99 latency, non-2xx count, the server's peak RSS, the load generator's own
   CPU use, and end-to-end / raw.

The load comes from the Python generator (loadgen) or, with --load-generator wrk, from wrk (wrk.py): at
thousands of requests/s one Python event loop saturates its core before the server does, and the
"client CPU %" column shows when that happens (near 100% for python; near 100% x wrk's threads for wrk).

With --device cuda (or auto on a machine with a GPU) the raw part also measures the CUDA backend in every
precision, from CUDA graphs and eagerly, and its agreement with the CPU fp32 reference (bench_cuda.py); the
CPU backends are still measured on the CPU. Asking for CUDA where there is none fails at once.

Nothing here asserts a speed; it reports one. Client and server share the machine's cores, as they would
in any single-machine benchmark: the client's own CPU use is part of the figures.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends import LoadedBackend, load_backend
from ..backends.base import Backend
from ..backends.onnx_backend import OnnxBackend
from ..backends.loading import chosen_backend, serving_device
from ..backends.registry import NAMES, ONNXRUNTIME, TORCH
from ..config import Settings, env_name
from ..device import CPU, device_kind, is_cuda
from ..layout import Layout, choose_layout
from ..local_service import loaded_service, model_inputs, probabilities_of
from ..precision import BF16, FP32, effective_precision
from . import agreement, bench_images, paired
from ..routes.v2_tensors import HEADER_LENGTH, IMAGE_INPUT, PROBABILITIES_OUTPUT, join_bytes_elements
from .grpc_load import run_grpc_load
from .loadgen import LoadResult, RequestSpec, run_load
from .local_server import LocalServer
from .wrk import find_wrk, max_threads, run_wrk, wrk_version

RAW_BATCH_SIZES = (1, 2, 4, 8, 16)
# Photos whose pixels the raw measurement cycles through (np.resize repeats them up to the batch size).
RAW_INPUT_IMAGES = 16
REFERENCE = f"{TORCH.name} {FP32}"
LOAD_GENERATORS = ("python", "wrk")
V2_HTTP = "v2 over HTTP"
GET_WEB = "GET /inference/<file> 500x375"
POST_WEB = "POST /inference 500x375"
V2_GRPC = "v2 over gRPC"


@dataclass(frozen=True)
class BenchOptions:
    photos_dirs: Sequence[Path]
    concurrencies: Sequence[int] = (1, 4, 16)
    duration_s: float = 15.0
    warmup_s: float = 2.0
    web_images: int = 48
    # 12-MP JPEGs: served in the HTTP scenarios, and decoded both ways for --jpeg-draft's agreement.
    phone_images: int = 16
    raw_repeats: int = 10
    raw_backends: Sequence[str] = NAMES
    include_bf16: bool = False
    # "python" (loadgen, in this process) or "wrk" (a child process; the same closed-loop scenarios).
    load_generator: str = "python"
    # The v2 scenarios over HTTP and gRPC: images per request, and clients. At most 4 clients of 16 images:
    # 64 images in flight, the CPU's default queue, so both measure their transport, not load shedding.
    images_per_request: int = 16
    v2_concurrencies: Sequence[int] = (1, 4)
    # End to end against raw in alternating windows (paired.py): one client against raw batch-1, and the
    # most clients against the raw best layout. 0 rounds: not measured.
    paired_rounds: int = paired.DEFAULT_ROUNDS
    paired_window_s: float = paired.DEFAULT_WINDOW_S
    paired_throughput_rounds: int = paired.THROUGHPUT_ROUNDS
    paired_throughput_window_s: float = paired.THROUGHPUT_WINDOW_S


@dataclass(frozen=True)
class RawResult:
    backend: str
    precision: str
    # Forward passes running at once: 1 on all threads, or each parallel lane on its share of them.
    passes: int
    latency_bs1_ms: float
    images_per_s: dict[int, float]
    # The parallel passes ran on independent sessions, each with its own weights: the reference layout of
    # issue 10 (N single-threaded sessions), beside the one-session lanes the server runs.
    separate_sessions: bool = False

    @property
    def best(self) -> tuple[int, float]:
        size = max(self.images_per_s, key=lambda s: self.images_per_s[s])
        return size, self.images_per_s[size]


@dataclass(frozen=True)
class Scenario:
    name: str
    concurrency: int
    result: LoadResult
    peak_rss_mib: float


def _median_seconds(action: Callable[[], object], repeats: int) -> float:
    action()  # the first call pays for lazy initialisation
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _batches(inputs: np.ndarray, sizes: Sequence[int]) -> dict[int, np.ndarray]:
    return {size: np.ascontiguousarray(np.resize(inputs, (size, *inputs.shape[1:]))) for size in sizes}


def measure_raw(
    backend: Backend, inputs: np.ndarray, repeats: int, batch_sizes: Sequence[int] = RAW_BATCH_SIZES
) -> list[RawResult]:
    """One pass at a time on all threads; and, if the backend has parallel lanes, all lanes at once."""
    batches = _batches(inputs, batch_sizes)
    seconds = {size: _median_seconds(lambda b=batch: backend.predict(b), repeats) for size, batch in batches.items()}
    results = [
        RawResult(backend.name, backend.precision, 1, seconds[1] * 1000.0, {s: s / t for s, t in seconds.items()})
    ]
    if backend.lane_predicts:
        results.append(measure_lanes(backend, inputs, repeats, batch_sizes))
    if isinstance(backend, OnnxBackend) and backend.lanes_share_a_session:
        separate = OnnxBackend(backend.model_path, backend.threads, len(backend.lane_predicts), shared_lanes=False)
        results.append(dataclasses.replace(measure_lanes(separate, inputs, repeats, batch_sizes), separate_sessions=True))
    return results


def measure_lanes(backend: Backend, inputs: np.ndarray, repeats: int, batch_sizes: Sequence[int] = RAW_BATCH_SIZES) -> RawResult:
    """Every parallel lane of ``backend`` running a pass at once, at each batch size."""
    lanes = list(backend.lane_predicts)
    with ThreadPoolExecutor(len(lanes)) as pool:

        def all_lanes_once(batch: np.ndarray) -> None:
            list(pool.map(lambda lane: lane(batch), lanes))

        lane_seconds = {size: _median_seconds(lambda b=batch: all_lanes_once(b), repeats) for size, batch in _batches(inputs, batch_sizes).items()}
    rates = {size: len(lanes) * size / t for size, t in lane_seconds.items()}
    return RawResult(backend.name, backend.precision, len(lanes), float("nan"), rates)


class RssSampler:
    """Samples a process's resident memory (with its children) in the background; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        processes = [self._process, *self._process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._rss())
            self._stop.wait(self._interval_s)

    def __enter__(self) -> RssSampler:
        self.peak_bytes = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _server_environment(settings: Settings) -> dict[str, str]:
    """The benchmark's own settings, handed to the server it starts (flags win over these for host/port)."""
    environment = {}
    for field in dataclasses.fields(Settings):
        value = getattr(settings, field.name)
        if value is not None:
            environment[env_name(field.name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return environment


@dataclass(frozen=True)
class RequestCycle:
    """A fixed list of requests sent in turn: a RequestFactory for loadgen, and a list wrk's script can hold."""

    specs: Sequence[RequestSpec]

    def __call__(self, number: int) -> RequestSpec:
        return self.specs[number % len(self.specs)]


def _get_requests(names: Sequence[str]) -> RequestCycle:
    return RequestCycle([RequestSpec("GET", f"/inference/{name}") for name in names])


def upload_requests(files: Sequence[Path], path: str = "/inference") -> RequestCycle:
    """POSTs of each file in turn as the raw body (the form TorchServe's /predictions takes too)."""
    headers = {"Content-Type": "image/jpeg"}
    return RequestCycle([RequestSpec("POST", path, file.read_bytes(), headers) for file in files])


def v2_infer_requests(model: str, batches: Sequence[Sequence[bytes]]) -> RequestCycle:
    """v2 infer requests of each batch of encoded images in turn, in the binary tensor data extension (a
    JSON header, then the BYTES elements), asking for binary probabilities: what tritonclient.http sends."""
    specs = []
    for images in batches:
        raw = join_bytes_elements(images)
        header = json.dumps({
            "inputs": [{"name": IMAGE_INPUT, "shape": [len(images)], "datatype": "BYTES",
                        "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": PROBABILITIES_OUTPUT, "parameters": {"binary_data": True}}],
        }).encode()
        headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
        specs.append(RequestSpec("POST", f"/v2/models/{model}/infer", header + raw, headers, images=len(images)))
    return RequestCycle(specs)


def batches_of(images: Sequence[bytes], size: int) -> list[list[bytes]]:
    """``images`` in batches of ``size``, cycling through them (at least one batch, whatever their count)."""
    count = max(1, len(images) // size)
    return [[images[(number * size + index) % len(images)] for index in range(size)] for number in range(count)]


def _load(base_url: str, requests: RequestCycle, concurrency: int, duration_s: float, generator: str) -> LoadResult:
    if generator == "wrk":
        return run_wrk(base_url, requests.specs, concurrency, duration_s)
    if generator == "python":
        return run_load(base_url, requests, concurrency, duration_s)
    raise ValueError(f"unknown load generator {generator!r}; one of {', '.join(LOAD_GENERATORS)}")


def drive(base_url: str, pid: int, name: str, requests: RequestCycle, concurrency: int, options: BenchOptions) -> Scenario:
    """Warm up, then load ``base_url`` with ``options.load_generator`` while sampling the peak RSS of
    process ``pid`` and its children."""
    return _measured(pid, name, concurrency, options, lambda seconds: _load(base_url, requests, concurrency, seconds, options.load_generator))


def _measured(pid: int, name: str, concurrency: int, options: BenchOptions, load: Callable[[float], LoadResult]) -> Scenario:
    """``load`` (for the seconds given) once to warm up, then measured while the peak RSS of process ``pid``
    and its children is sampled."""
    load(options.warmup_s)
    with RssSampler(pid) as rss:
        result = load(options.duration_s)
    return Scenario(name, concurrency, result, rss.peak_bytes / 2**20)


def _drive_v2(server: LocalServer, model: str, images: Sequence[bytes], options: BenchOptions, report: Callable[[str], None]) -> list[Scenario]:
    """The same requests of ``options.images_per_request`` images through v2 over HTTP and over gRPC."""
    assert server.grpc_address is not None
    address = server.grpc_address
    batches = batches_of(images, options.images_per_request)
    count = options.images_per_request
    scenarios = []
    for concurrency in options.v2_concurrencies:
        report(f"v2: {count}-image requests over HTTP and gRPC, concurrency {concurrency} ...")
        scenarios.append(_drive(server, f"{V2_HTTP}, {count} images", v2_infer_requests(model, batches), concurrency, options))
        scenarios.append(_measured(
            server.process.pid, f"{V2_GRPC}, {count} images", concurrency, options,
            lambda seconds, c=concurrency: run_grpc_load(address, model, batches, c, seconds),
        ))
    return scenarios


def describe_load_generator(generator: str) -> str:
    """What drove the HTTP scenarios, for the report's header; WrkMissing when wrk is asked for and absent."""
    if generator == "wrk":
        return f"{wrk_version(find_wrk())} (closed loop; threads: min(connections, {max_threads()}))"
    if generator == "python":
        return "python (densenet_server.tooling.loadgen: httpx on one asyncio event loop, in the benchmark's process)"
    raise ValueError(f"unknown load generator {generator!r}; one of {', '.join(LOAD_GENERATORS)}")


def _drive(server: LocalServer, name: str, requests: RequestCycle, concurrency: int, options: BenchOptions) -> Scenario:
    return drive(server.base_url, server.process.pid, name, requests, concurrency, options)


def _raw_settings(settings: Settings, options: BenchOptions) -> list[Settings]:
    # The CPU backends, on the CPU also where the server runs on CUDA: torch fp32 there is the reference.
    variants = [dataclasses.replace(settings, backend=name, precision=FP32, device=CPU) for name in options.raw_backends]
    if options.include_bf16:
        variants.append(dataclasses.replace(settings, backend=TORCH.name, precision=BF16, device=CPU))
    return variants


def run_bench(settings: Settings, options: BenchOptions, report: Callable[[str], None] = print) -> str:
    """Run every measurement and return the Markdown report (also printed step by step via ``report``)."""
    device = serving_device(settings)  # before anything else: --device cuda without CUDA fails here
    generator = describe_load_generator(options.load_generator)  # a missing wrk fails here too, not at the end
    report(f"load generator: {generator}")
    _, layout = choose_layout(settings)  # what the server it starts will choose on this machine
    report(f"layout: {layout.describe()}")
    photos = bench_images.find_photos(options.photos_dirs)
    with tempfile.TemporaryDirectory(prefix="densenet-bench-") as temporary:
        images_dir = Path(temporary)
        web = bench_images.write_jpegs(photos, images_dir, bench_images.WEB_SIZE, "web", options.web_images)
        phone = bench_images.write_jpegs(photos, images_dir, bench_images.PHONE_SIZE, "phone", options.phone_images)
        web_bytes = [path.read_bytes() for path in web]
        raw_results = []
        answers: dict[str, np.ndarray] = {}
        served: tuple[Backend, np.ndarray] | None = None
        for variant in _raw_settings(settings, options):
            label = f"{variant.backend} {variant.precision}"
            report(f"raw: {label} ...")
            try:
                loaded = load_backend(variant)
            except Exception as exc:  # a backend that is not installed is reported, not fatal
                report(f"raw: {label} unavailable: {exc}")
                continue
            # The backend raw, on the pixels the service makes of the photos; then through the service.
            with loaded_service(variant, loaded) as service:
                inputs = model_inputs(service, web_bytes[:RAW_INPUT_IMAGES])
                raw_results.extend(measure_raw(loaded.backend, inputs, options.raw_repeats))
                answers[label] = probabilities_of(service, web_bytes)
            if _is_served(settings, device, variant):
                # Kept for the paired windows, which alternate with the server's requests.
                served = (loaded.backend, inputs)
            del loaded
        cuda_results: list[RawResult] = []
        if is_cuda(device):
            from .bench_cuda import measure_cuda

            cuda_results = measure_cuda(settings, device, web_bytes, options.raw_repeats, answers, report)
        agreements = _fast_path_agreements(settings, answers, phone, report)

        scenarios: list[Scenario] = []
        serve_args = ["--images-dir", str(images_dir)]
        environment = _server_environment(settings)
        with LocalServer.start(serve_args, env=environment) as server:
            ready_s = server.seconds_to_ready
            web_names = [p.name for p in web]
            for concurrency in options.concurrencies:
                report(f"http: GET 500x375 JPEG, concurrency {concurrency} ...")
                scenarios.append(_drive(server, GET_WEB, _get_requests(web_names), concurrency, options))
            for concurrency in options.concurrencies:
                report(f"http: POST 500x375 JPEG, concurrency {concurrency} ...")
                scenarios.append(_drive(server, POST_WEB, upload_requests(web), concurrency, options))
            scenarios += _drive_v2(server, settings.served_name(), web_bytes, options, report)
            paired_lines = _paired(server, served, raw_results, web, options, report) if served else []
            report("http: GET 12-MP JPEG, concurrency 1 ...")
            scenarios.append(_drive(server, "GET 4000x3000 (exact)", _get_requests([p.name for p in phone]), 1, options))
        with LocalServer.start([*serve_args, "--jpeg-draft"], env=environment) as server:
            report("http: GET 12-MP JPEG with --jpeg-draft, concurrency 1 ...")
            scenarios.append(_drive(server, "GET 4000x3000 (--jpeg-draft)", _get_requests([p.name for p in phone]), 1, options))
    report_text = format_report(settings, raw_results, agreements, scenarios, ready_s, device, cuda_results, layout, generator)
    return "\n".join([report_text, *paired_lines])


def _paired(
    server: LocalServer, served: tuple[Backend, np.ndarray], raw_results: Sequence[RawResult], web: Sequence[Path],
    options: BenchOptions, report: Callable[[str], None],
) -> list[str]:
    """The paired tables (paired.py) for the served CPU ``backend`` on its ``inputs``: one client against
    raw batch-1, and the most clients of options.concurrencies against the raw best layout."""
    backend, inputs = served
    requests = {GET_WEB: _get_requests([path.name for path in web]), POST_WEB: upload_requests(web)}
    lines: list[str] = []
    if options.paired_rounds > 0:
        report(f"paired: one client against raw batch-1, {options.paired_rounds} rounds ...")
        raw = paired.raw_latency(functools.partial(backend.predict, np.ascontiguousarray(inputs[:1])))
        one_client = {name: paired.client_p50(_load_for(server, cycle, 1, options)) for name, cycle in requests.items()}
        found = paired.measure_paired(raw, one_client, options.paired_rounds, options.paired_window_s)
        lines += ["", *paired.latency_table(found, options.paired_window_s)]
    clients = max(options.concurrencies)
    if options.paired_throughput_rounds > 0 and clients > 1:
        lanes, batch_size = _best_layout(backend, raw_results)
        layout = f"{len(lanes)} pass(es) at once of batch {batch_size}"
        report(f"paired: {clients} clients against the raw best ({layout}), {options.paired_throughput_rounds} rounds ...")
        raw = paired.raw_rate(lanes, np.ascontiguousarray(np.resize(inputs, (batch_size, *inputs.shape[1:]))))
        many = {name: paired.client_rate(_load_for(server, cycle, clients, options)) for name, cycle in requests.items()}
        found = paired.measure_paired(raw, many, options.paired_throughput_rounds, options.paired_throughput_window_s)
        lines += ["", *paired.throughput_table(found, options.paired_throughput_window_s, clients, layout)]
    return lines


def _best_layout(backend: Backend, raw_results: Sequence[RawResult]) -> tuple[list[Callable[[np.ndarray], np.ndarray]], int]:
    """The passes and the batch size of ``backend``'s best raw row in this run (its lanes, their separate
    sessions, or its one all-threads pass): the layout a paired throughput window runs."""
    lanes = list(backend.lane_predicts)
    rows = [r for r in raw_results if (r.backend, r.precision) == (backend.name, backend.precision)]
    if not rows:
        return (lanes or [backend.predict]), 1
    best = max(rows, key=lambda r: r.best[1])
    if best.passes == 1:
        return [backend.predict], best.best[0]
    if best.separate_sessions and isinstance(backend, OnnxBackend):
        lanes = list(OnnxBackend(backend.model_path, backend.threads, best.passes, shared_lanes=False).lane_predicts)
    return lanes, best.best[0]


def _load_for(server: LocalServer, requests: RequestCycle, clients: int, options: BenchOptions) -> Callable[[float], LoadResult]:
    return lambda seconds: _load(server.base_url, requests, clients, seconds, options.load_generator)


def _is_served(settings: Settings, device: str, variant: Settings) -> bool:
    """Whether raw ``variant`` is what the server runs: its backend and precision, on the CPU."""
    if is_cuda(device):
        return False
    return variant.backend == _served_backend(settings, device) and variant.precision == _served_precision(settings, device)


def _served_precision(settings: Settings, device: str) -> str:
    return effective_precision(settings.precision, device_kind(device), settings.model)


def _fast_path_agreements(
    settings: Settings, answers: dict[str, np.ndarray], phone: Sequence[Path], report: Callable[[str], None]
) -> list[agreement.Agreement]:
    """Each faster path against the exact fp32 reference (torch, or the served backend without torch)."""
    reference_label = REFERENCE if REFERENCE in answers else next(iter(answers), None)
    results = [
        agreement.compare(f"{label} vs {reference_label} (500x375 JPEGs)", probabilities, answers[reference_label])
        for label, probabilities in answers.items()
        if label != reference_label and reference_label is not None
    ]
    report("agreement: --jpeg-draft on 12-MP JPEGs ...")
    fp32 = dataclasses.replace(settings, precision=FP32)
    loaded = load_backend(fp32)
    phone_bytes = [path.read_bytes() for path in phone]
    exact, draft = (
        _service_probabilities(dataclasses.replace(fp32, jpeg_draft=jpeg_draft), loaded, phone_bytes)
        for jpeg_draft in (False, True)
    )
    results.append(agreement.compare(f"--jpeg-draft vs exact decoding ({loaded.backend.name}, 4000x3000 JPEGs)", draft, exact))
    return results


def _service_probabilities(settings: Settings, loaded: LoadedBackend, images: Sequence[bytes]) -> np.ndarray:
    with loaded_service(settings, loaded) as service:
        return probabilities_of(service, images)


def format_report(
    settings: Settings,
    raw_results: Sequence[RawResult],
    agreements: Sequence[agreement.Agreement],
    scenarios: Sequence[Scenario],
    ready_s: float | None,
    device: str = CPU,
    cuda_results: Sequence[RawResult] = (),
    layout: Layout | None = None,
    load_generator: str | None = None,
) -> str:
    lines = []
    if layout is not None:
        lines += ["### Machine and layout", "", f"{layout.describe()}.", ""]
    lines += ["### Raw backends (in-process, preprocessed photos)", ""]
    lines += raw_table(raw_results, RAW_BATCH_SIZES)
    if cuda_results:
        from .bench_cuda import CUDA_BATCH_SIZES

        lines += ["", f"### CUDA backend on {device} (in-process, preprocessed photos, host copies included)", ""]
        lines += raw_table(cuda_results, CUDA_BATCH_SIZES)
    lines += ["", "### What the faster paths change (probabilities over all the model's classes)", ""]
    lines.append("| path | images | max abs diff | mean abs diff | same top-1 |")
    lines.append("| --- | --- | --- | --- | --- |")
    for entry in agreements:
        lines.append(
            f"| {entry.path} | {entry.images} | {entry.max_abs_diff:.2e} | {entry.mean_abs_diff:.2e} "
            f"| {entry.top1_agreement:.1%} |"
        )
    served_backend = _served_backend(settings, device)
    served_precision = _served_precision(settings, device)
    served_rows = [
        r for r in [*raw_results, *cuda_results] if r.backend == served_backend and r.precision == served_precision
    ]
    served = next((r for r in served_rows if r.passes == 1), None)
    best_rate = max((r.best[1] for r in served_rows), default=float("nan"))
    ready = f"; ready {ready_s:.1f} s after start" if ready_s is not None else ""
    lines += ["", f"### End to end over HTTP (server backend: {served_backend} {served_precision}{ready})", ""]
    if load_generator is not None:
        lines += [
            f"Load generator: {load_generator}. Client CPU % is its CPU time over the measured wall time "
            "(100 = one core): near 100 × its threads, the client, not the server, was the limit.",
            "",
        ]
    lines.append(
        "| scenario | clients | requests | non-2xx | img/s | p50 ms | p90 ms | p99 ms | peak RSS MiB "
        "| client CPU % | img/s ÷ raw best | p50 − raw bs1 ms |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scenario in scenarios:
        result = scenario.result
        ratio = f"{result.images_per_s / best_rate:.2f}" if served else "n/a"
        over_raw = f"{result.latency_ms(50) - served.latency_bs1_ms:+.1f}" if served else "n/a"
        lines.append(
            f"| {scenario.name} | {scenario.concurrency} | {result.requests} | {result.failed} "
            f"| {result.images_per_s:.1f} | {result.latency_ms(50):.1f} | {result.latency_ms(90):.1f} "
            f"| {result.latency_ms(99):.1f} | {scenario.peak_rss_mib:.0f} | {client_cpu_cell(result)} | {ratio} "
            f"| {over_raw} |"
        )
    lines += transport_ratios(scenarios)
    if served:
        best = max(served_rows, key=lambda r: r.best[1])
        lines += ["", f"Raw best for the served backend: {best.best[1]:.1f} img/s at batch size {best.best[0]} "
                  f"with {best.passes} pass(es) at once; batch-1 latency {served.latency_bs1_ms:.1f} ms."]
    return "\n".join(lines)


def transport_ratios(scenarios: Sequence[Scenario]) -> list[str]:
    """gRPC's img/s over HTTP's for the same v2 requests at each concurrency where both ran."""
    http = {s.concurrency: s for s in scenarios if s.name.startswith(V2_HTTP)}
    grpc = {s.concurrency: s for s in scenarios if s.name.startswith(V2_GRPC)}
    ratios = [
        f"{grpc[c].result.images_per_s / http[c].result.images_per_s:.2f} at {c} client(s)"
        for c in sorted(http.keys() & grpc.keys())
        if http[c].result.images_per_s > 0
    ]
    return ["", f"gRPC ÷ HTTP, img/s of the same v2 requests: {', '.join(ratios)}."] if ratios else []


def client_cpu_cell(result: LoadResult) -> str:
    """The load generator's CPU use as a table cell ("n/a" where it was not measured)."""
    percent = result.client_cpu_percent
    return "n/a" if percent != percent else f"{percent:.0f}"  # NaN is the only value unequal to itself


def raw_table(results: Sequence[RawResult], batch_sizes: Sequence[int]) -> list[str]:
    lines = [
        "| backend | precision | passes at once | bs1 latency ms | " + " | ".join(f"bs{s} img/s" for s in batch_sizes) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in batch_sizes) + " |",
    ]
    for raw in results:
        rates = " | ".join(f"{raw.images_per_s[s]:.1f}" for s in batch_sizes)
        latency = "" if raw.passes > 1 else f"{raw.latency_bs1_ms:.1f}"
        passes = f"{raw.passes}, a session each" if raw.separate_sessions else str(raw.passes)
        lines.append(f"| {raw.backend} | {raw.precision} | {passes} | {latency} | {rates} |")
    return lines


def _served_backend(settings: Settings, device: str = CPU) -> str:
    if is_cuda(device):
        from .bench_cuda import cuda_label

        return cuda_label(device, graphs=True)
    return ONNXRUNTIME.name if settings.onnx_model is not None else chosen_backend(settings)
