"""The `densenet-server` command: serve | classify | evaluate | export | bench | soak | config."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import config
from .config import Settings

log = logging.getLogger("densenet_server")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # httpx logs every request at INFO: thousands of lines from the bench's and soak's load generators,
    # written by the client process whose CPU the measurement counts.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from .model_catalog import base_record
    from .models_file import model_settings
    from .server import serve
    from .weights import WeightsError, local_weights_info

    # Fail here, with a clear message and exit status, on what can be checked before the engines start:
    # each model's (--models-file: every table's).
    for model in model_settings(settings):
        if model.weights is not None:
            local_weights_info(model.weights, base_record(model.model), model.weights_sha256)
        if model.onnx_model is not None and not model.onnx_model.is_file():
            raise WeightsError(f"ONNX model {model.onnx_model} does not exist")
    if not settings.images_dir.is_dir():
        log.warning("images folder %s does not exist; GET /inference/<filename> will answer 404", settings.images_dir)
    serve(settings)
    return 0


def _engine(_: Settings, args: argparse.Namespace) -> int:
    from .engine.launcher import engine_main

    return engine_main(args.run_folder, args.control_fd)


def _one_model(settings: Settings, command: str) -> None:
    """The in-process commands run one model: the one the model flags describe."""
    from .models_file import ModelsFileError

    if settings.models_file is not None:
        raise ModelsFileError(
            f"{command} runs one model: give it with --model, --weights, --labels... (--models-file is for serve)"
        )


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from .evaluate import TruthError, evaluate
    from .local_service import loaded_service

    _one_model(settings, "evaluate")
    images_dir = args.images_dir or args.truth.parent
    with loaded_service(settings) as service:
        try:
            result = evaluate(service, args.truth, images_dir)
        except TruthError as exc:
            log.error("%s", exc)
            return 2
    print(result.summary())
    for name in result.unreadable:
        print(f"unreadable: {name}", file=sys.stderr)
    return 1 if result.unreadable or result.images == 0 else 0


def _classify(settings: Settings, args: argparse.Namespace) -> int:
    from .classify_cli import run
    from .local_service import loaded_service

    _one_model(settings, "classify")
    with loaded_service(settings) as service:
        return run(service, args.paths, args.output, args.top_k, progress=not args.no_progress)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    from .backends.loading import torch_missing
    from .model_catalog import base_record, served_record

    try:
        from .backends.onnx_export import export_onnx
        from .model import load_model
    except ImportError as exc:
        raise torch_missing("exporting the model to ONNX") from exc
    _one_model(settings, "export")
    loaded = load_model(base_record(settings.model), settings.weights, settings.weights_sha256)
    # The export carries what its weights compute: --model's record with the checkpoint's class count and,
    # with --labels, their names. The name it is served under and its outputs (--model-name, --multi-label,
    # --threshold) are chosen when it is served, as for any other weights.
    record = served_record(loaded.record, labels=settings.labels)
    loaded.weights.log()
    report = export_onnx(loaded.module, loaded.weights, record, args.output, settings.effective_threads())
    print(
        f"{report.path}: {record.architecture} with {record.num_classes} classes, weights "
        f"{loaded.weights.id}; verified against PyTorch, max probability difference "
        f"{report.max_probability_diff:.2e}, max logit difference {report.max_logit_diff:.2e}"
    )
    return 0


def _bench_extra_missing(command: str, exc: ImportError) -> int:
    log.error("%s needs the 'bench' extra (pip install 'densenet-server[bench]'): %s", command, exc)
    return 2


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from .tooling.bench import BenchOptions, run_bench
    except ImportError as exc:
        return _bench_extra_missing("the benchmark", exc)
    from .tooling.wrk import WrkMissing

    options = BenchOptions(
        photos_dirs=args.photos, concurrencies=args.concurrency, duration_s=args.duration_s, include_bf16=args.bf16,
        load_generator=args.load_generator, paired_rounds=args.paired_rounds,
        paired_throughput_rounds=args.paired_throughput_rounds,
    )
    try:
        report = run_bench(settings, options, report=lambda line: print(line, file=sys.stderr, flush=True))
    except WrkMissing as exc:  # checked before any measurement: say so plainly, no traceback
        log.error("%s", exc)
        return 2
    print(report)
    if args.output:
        args.output.write_text(report + "\n", encoding="utf-8")
    return 0


def _soak(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from .tooling.soak import run_from_cli
    except ImportError as exc:
        return _bench_extra_missing("the soak", exc)
    return run_from_cli(settings, args)


def _int_list(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas, e.g. 1,4,16")
    return values


def _top_k(raw: str) -> int:
    """A positive integer; more than the model's classes means all of them (postprocess.top_k)."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _results_file(raw: str) -> Path:
    path = Path(raw)
    if path.suffix.lower() not in {".csv", ".json"}:
        raise argparse.ArgumentTypeError("the results file must end in .csv or .json")
    return path


def _print_config(_: Settings, __: argparse.Namespace) -> int:
    print(config.markdown_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="densenet-server",
        description="Classify images with a torchvision classifier (DenseNet-121 unless --model says otherwise).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (gunicorn)")
    config.add_arguments(serve, [config.MODEL, config.SERVER, config.BATCHING, config.LIMITS])
    serve.set_defaults(handler=_serve)

    evaluate = commands.add_parser(
        "evaluate", help="accuracy on a labelled folder: top-1/top-5, or a multi-label model's precision and recall"
    )
    evaluate.add_argument(
        "--truth", type=Path, required=True,
        help="CSV with columns file,label_index: each file's class index (a multi-label model's: any number, "
        "separated by ';')",
    )
    config.add_arguments(evaluate, [config.MODEL])
    evaluate.add_argument("--images-dir", dest="images_dir", type=Path, default=None, help="folder of the CSV's files (default: the CSV's folder)")
    evaluate.set_defaults(handler=_evaluate)

    classify = commands.add_parser(
        "classify", help="classify image files and folders in-process (no server), to CSV or JSON"
    )
    classify.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files and folders (searched recursively)")
    classify.add_argument("--output", "-o", type=_results_file, default=None, help="results file, .csv or .json (default: CSV on stdout)")
    classify.add_argument("--top-k", dest="top_k", type=_top_k, default=5, help="classes per image (default 5)")
    classify.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    config.add_arguments(classify, [config.MODEL, config.BATCHING, config.LIMITS])
    classify.set_defaults(handler=_classify)

    export = commands.add_parser(
        "export", help="export the model to ONNX, verified against PyTorch (serve it with --onnx-model)"
    )
    export.add_argument("--output", "-o", type=Path, required=True, help="the ONNX file to write")
    config.add_arguments(export, [config.MODEL])
    export.set_defaults(handler=_export)

    bench = commands.add_parser(
        "bench", help="benchmark: raw backends in-process, then the real server over HTTP; prints a table"
    )
    bench.add_argument("--photos", type=Path, nargs="+", default=[Path("images")], help="folders of photos to make the request JPEGs from; the first with photos is used (default: images)")
    bench.add_argument("--concurrency", type=_int_list, default=[1, 4, 16], help="concurrent clients per HTTP scenario (default 1,4,16)")
    bench.add_argument("--duration-s", dest="duration_s", type=float, default=15.0, help="seconds per HTTP scenario, after a 2 s warm-up (default 15)")
    bench.add_argument("--bf16", action="store_true", help="also measure the torch backend in bf16 (raw)")
    bench.add_argument(
        "--load-generator", dest="load_generator", choices=("python", "wrk"), default="python",
        help="what drives the HTTP scenarios: python (built in) or wrk (needs the 'wrk' program; for thousands of requests/s, where python's one core saturates first) (default python)",
    )
    bench.add_argument(
        "--paired-rounds", dest="paired_rounds", type=int, default=5,
        help="rounds of one client against raw batch-1 in alternating 2 s windows, robust to the machine changing speed; 0 skips them (default 5)",
    )
    bench.add_argument(
        "--paired-throughput-rounds", dest="paired_throughput_rounds", type=int, default=3,
        help="rounds of the most --concurrency clients against the raw best layout in alternating 4 s windows; 0 skips them (default 3)",
    )
    bench.add_argument("--output", "-o", type=Path, default=None, help="also write the Markdown report to this file")
    config.add_arguments(bench, [config.MODEL, config.BATCHING, config.LIMITS])
    bench.set_defaults(handler=_bench)

    soak = commands.add_parser(
        "soak", help="overload the real server for minutes, then SIGTERM it under load; prints a Markdown report"
    )
    soak.add_argument("--minutes", type=float, default=10.0, help="length of the overload (default 10)")
    soak.add_argument("--overload", type=float, default=2.0, help="offered load as a multiple of the measured capacity (default 2)")
    soak.add_argument("--capacity-s", dest="capacity_s", type=float, default=30.0, help="seconds of the capacity measurement (default 30)")
    soak.add_argument("--capacity-clients", dest="capacity_clients", type=int, default=16, help="closed-loop clients measuring the capacity (default 16)")
    soak.add_argument("--interval-s", dest="interval_s", type=float, default=60.0, help="seconds per row of the report (default 60)")
    soak.add_argument("--photos", type=Path, nargs="+", default=[Path("images")], help="folders of photos to make the request JPEGs from; the first with photos is used (default: images)")
    soak.add_argument("--output", "-o", type=Path, default=None, help="also write the Markdown report to this file")
    config.add_arguments(soak, [config.MODEL, config.BATCHING, config.LIMITS])
    soak.set_defaults(handler=_soak)

    # Started by `serve` itself (engine/launcher.py), never by hand.
    engine = commands.add_parser("engine", help=argparse.SUPPRESS)
    engine.add_argument("run_folder", type=Path)
    engine.add_argument("control_fd", type=int)
    engine.set_defaults(handler=_engine)

    show = commands.add_parser("config", help="print every setting as a Markdown table")
    show.set_defaults(handler=_print_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load_settings(vars(args))
    except ValueError as exc:
        print(f"densenet-server: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    from .api_keys import ApiKeysError
    from .device import DeviceError
    from .models_file import ModelsFileError
    from .tls import TlsError
    from .weights import WeightsError

    try:
        return args.handler(settings, args)
    except (WeightsError, DeviceError, ModelsFileError, ApiKeysError, TlsError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
