"""Several models in one server against one server per model (issue 11's target), in one run.

    python scripts/bench_models.py --models-file models.toml [--photos DIR] [--concurrency 16] [--duration-s 15]

For each model of the file, a server with that model alone (a models file of its one table) is driven with
uploads to it; then the server with every model of the file is driven with the same uploads to each model
in turn, the others idle. The table gives each model's img/s both ways and their ratio (the target: within
10%, ratio >= 0.90), with the p50 latency and the peak RSS of each server's process tree.
"""

from __future__ import annotations

import argparse
import tempfile
import tomllib
from pathlib import Path

from densenet_server.tooling import bench_images
from densenet_server.tooling.bench import LOAD_GENERATORS, BenchOptions, Scenario, describe_load_generator, drive, upload_requests
from densenet_server.tooling.local_server import LocalServer


def one_model_file(models_file: Path, name: str, folder: Path) -> Path:
    """A models file of ``name``'s table alone, in the original's folder so its relative paths still hold."""
    table = tomllib.loads(models_file.read_text(encoding="utf-8"))["models"][name]
    lines = [f"[models.{name}]"] + [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    path = folder / f".bench-{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def measure(models_file: Path, name: str, jpegs: list[Path], concurrency: int, options: BenchOptions) -> Scenario:
    with LocalServer.start(["--models-file", str(models_file), "--grpc-port", "0"]) as server:
        requests = upload_requests(jpegs, f"/inference?model={name}")
        return drive(server.base_url, server.process.pid, name, requests, concurrency, options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-file", type=Path, required=True)
    parser.add_argument("--photos", type=Path, nargs="+", default=[Path("images")])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--load-generator", choices=LOAD_GENERATORS, default="python")
    args = parser.parse_args()
    options = BenchOptions(photos_dirs=args.photos, duration_s=args.duration_s, load_generator=args.load_generator)
    generator = describe_load_generator(args.load_generator)
    models_file = args.models_file.resolve()
    names = list(tomllib.loads(models_file.read_text(encoding="utf-8"))["models"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="densenet-models-") as temporary:
        jpegs = bench_images.write_jpegs(
            bench_images.find_photos(args.photos), Path(temporary), bench_images.WEB_SIZE, "web", options.web_images
        )
        alone: dict[str, Scenario] = {}
        for name in names:
            print(f"{name} alone, {args.concurrency} clients ...", flush=True)
            single = one_model_file(models_file, name, models_file.parent)
            try:
                alone[name] = measure(single, name, jpegs, args.concurrency, options)
            finally:
                single.unlink()
        with LocalServer.start(["--models-file", str(models_file), "--grpc-port", "0"]) as server:
            for name in names:
                print(f"{name} in the {len(names)}-model server, {args.concurrency} clients ...", flush=True)
                requests = upload_requests(jpegs, f"/inference?model={name}")
                shared = drive(server.base_url, server.process.pid, name, requests, args.concurrency, options)
                one = alone[name]
                rows.append(
                    f"| {name} | {one.result.images_per_s:.1f} | {shared.result.images_per_s:.1f} "
                    f"| {shared.result.images_per_s / one.result.images_per_s:.2f} "
                    f"| {one.result.latency_ms(50):.1f} | {shared.result.latency_ms(50):.1f} "
                    f"| {one.peak_rss_mib:.0f} | {shared.peak_rss_mib:.0f} | {one.result.failed + shared.result.failed} |"
                )
    print()
    print(f"Load generator: {generator}; {args.concurrency} clients, {args.duration_s:g} s per scenario, uploads of 500x375 JPEGs.")
    print()
    print("| model | alone img/s | in the shared server img/s | ratio | alone p50 ms | shared p50 ms | alone peak RSS MiB | shared peak RSS MiB | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
