"""The `densenet-server` command: serve | classify | evaluate | config."""

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


def build_classifier(settings: Settings):  # type: ignore[no-untyped-def]
    """An in-process classifier for the commands that need no server."""
    from .backends import TorchBackend
    from .classifier import Classifier
    from .model import load_model

    loaded = load_model(settings.weights, settings.weights_sha256)
    return Classifier(loaded, TorchBackend(loaded.module, settings.effective_threads()), settings.max_image_pixels)


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from .model import WeightsError, file_sha256
    from .server import serve

    # Fail here, with a clear message and exit status, on what can be checked without loading torch.
    if settings.weights is not None:
        if not settings.weights.is_file():
            raise WeightsError(f"weights file {settings.weights} does not exist")
        if settings.weights_sha256 and file_sha256(settings.weights) != settings.weights_sha256.lower():
            raise WeightsError(f"weights file {settings.weights} does not match --weights-sha256")
    if not settings.images_dir.is_dir():
        log.warning("images folder %s does not exist; GET /inference/<filename> will answer 404", settings.images_dir)
    serve(settings)
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    images_dir = args.images_dir or args.labels.parent
    result = evaluate(build_classifier(settings), args.labels, images_dir)
    print(f"images: {result.images}  top-1: {result.top1:.4f}  top-5: {result.top5:.4f}")
    for name in result.unreadable:
        print(f"unreadable: {name}", file=sys.stderr)
    return 1 if result.unreadable or result.images == 0 else 0


def _classify(settings: Settings, args: argparse.Namespace) -> int:
    from .classify_cli import run

    classifier = build_classifier(settings)
    return run(
        classifier, args.paths, args.output, args.top_k, settings.max_batch_size,
        progress=not args.no_progress, decode_threads=settings.effective_threads(),
    )


def _top_k(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be an integer from 1 to 1000")
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
        prog="densenet-server", description="Classify images with torchvision's DenseNet-121."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (gunicorn)")
    config.add_arguments(serve, [config.MODEL, config.SERVER, config.BATCHING, config.LIMITS])
    serve.set_defaults(handler=_serve)

    evaluate = commands.add_parser("evaluate", help="top-1/top-5 accuracy on a labelled folder")
    evaluate.add_argument("--labels", type=Path, required=True, help="CSV with columns file,label_index")
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
    from .model import WeightsError

    try:
        return args.handler(settings, args)
    except WeightsError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
