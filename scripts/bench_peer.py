"""Drive this server and a peer model server (e.g. TorchServe) with the same uploads, in one run.

    python scripts/bench_peer.py --weights W.pth --peer-url http://127.0.0.1:8080/predictions/densenet121 \
        --peer-pid PID [--peer-name torchserve] [--photos DIR] [--duration-s 15]

Both get the same 500x375 JPEGs as raw POST bodies from the same closed-loop clients (loadgen), one
concurrency at a time, ours first; the table shows img/s, latency percentiles, non-2xx answers and the
peak RSS of each server's process tree. scripts/bench-torchserve.sh sets TorchServe up and calls this;
scripts/bench-litserve.sh does the same for LitServe, with --pause-peer: its idle inference workers poll
their queue every millisecond (about a fifth of a core here), so they are stopped (SIGSTOP) while this
server is driven and continued (SIGCONT) for their own turn.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from densenet_server.tooling import bench_images
from densenet_server.tooling.bench import LOAD_GENERATORS, BenchOptions, Scenario, client_cpu_cell, describe_load_generator, drive, upload_requests
from densenet_server.tooling.local_server import LocalServer


def _row(server: str, scenario: Scenario) -> str:
    result = scenario.result
    return (
        f"| {server} | {scenario.concurrency} | {result.requests} | {result.failed} | {result.images_per_s:.1f} "
        f"| {result.latency_ms(50):.1f} | {result.latency_ms(90):.1f} | {result.latency_ms(99):.1f} "
        f"| {scenario.peak_rss_mib:.0f} | {client_cpu_cell(result)} |"
    )


@contextlib.contextmanager
def _stopped(pid: int | None) -> Iterator[None]:
    """Stop process ``pid`` and its children for the duration (nothing if ``pid`` is None)."""
    if pid is None:
        yield
        return
    import psutil

    top = psutil.Process(pid)
    processes = [top, *top.children(recursive=True)]
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in reversed(processes):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="checkpoint for this server (the peer's model must hold the same)")
    parser.add_argument("--peer-url", required=True, help="the peer's full prediction URL, taking the image as the POST body")
    parser.add_argument("--peer-pid", type=int, required=True, help="the peer's top process, for its RSS (children included)")
    parser.add_argument("--peer-name", default="peer")
    parser.add_argument("--photos", type=Path, nargs="+", default=[Path("images")])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--load-generator", choices=LOAD_GENERATORS, default="python", help="python (built in) or wrk (needs the 'wrk' program)")
    parser.add_argument(
        "--pause-peer", action="store_true", help="stop the peer's processes while this server is driven (for a peer that uses CPU when idle)"
    )
    args = parser.parse_args()

    options = BenchOptions(photos_dirs=args.photos, duration_s=args.duration_s, load_generator=args.load_generator)
    generator = describe_load_generator(args.load_generator)  # a missing wrk fails here, before any server starts
    peer = urlsplit(args.peer_url)
    peer_base = f"{peer.scheme}://{peer.netloc}"
    with tempfile.TemporaryDirectory(prefix="densenet-peer-") as temporary:
        web = bench_images.write_jpegs(
            bench_images.find_photos(args.photos), Path(temporary), bench_images.WEB_SIZE, "web", options.web_images
        )
        rows = []
        with LocalServer.start(["--weights", str(args.weights), "--images-dir", temporary]) as ours:
            for concurrency in args.concurrency:
                print(f"densenet-server, concurrency {concurrency} ...", flush=True)
                with _stopped(args.peer_pid if args.pause_peer else None):
                    scenario = drive(ours.base_url, ours.process.pid, "ours", upload_requests(web), concurrency, options)
                rows.append(_row("densenet-server", scenario))
                print(f"{args.peer_name}, concurrency {concurrency} ...", flush=True)
                peer_requests = upload_requests(web, peer.path)
                rows.append(_row(args.peer_name, drive(peer_base, args.peer_pid, "peer", peer_requests, concurrency, options)))
    print()
    print(f"Load generator: {generator}; client CPU % = its CPU time / wall time (100 = one core).")
    print()
    print("| server | clients | requests | non-2xx | img/s | p50 ms | p90 ms | p99 ms | peak RSS MiB | client CPU % |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
