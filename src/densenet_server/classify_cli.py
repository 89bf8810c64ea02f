"""`densenet-server classify PATH...`: classify files and folders in-process (no server), in batches.

Output (CSV or JSON, chosen by the --output file's suffix; CSV on stdout without --output):
- CSV: one row per file and rank, columns ``file,rank,index,label,probability,error``; a file that could
  not be classified has one row with an empty rank/index/label/probability and the reason in ``error``.
- JSON: a list, one object per file: ``{"file", "class", "index", "probability", "top_k": [{"index",
  "label", "probability"}, ...]}`` or ``{"file", "error"}``.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from .classifier import Classifier
from .decoding import ImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CSV_COLUMNS = ["file", "rank", "index", "label", "probability", "error"]


@dataclass
class Outcome:
    file: str
    answer: dict[str, Any] | None = None
    error: str | None = None


def collect_files(paths: Sequence[Path]) -> tuple[list[Path], list[Outcome]]:
    """Files named directly (any suffix) and image files found in folders (recursively), in order;
    and an outcome with an error for each path that does not exist."""
    files: list[Path] = []
    missing: list[Outcome] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(Outcome(str(path), error="no such file or folder"))
    return files, missing


def _batches(files: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(files), size):
        yield files[start : start + size]


def _prepare(classifier: Classifier, path: Path) -> np.ndarray | Exception:
    try:
        return classifier.prepare(path.read_bytes())
    except (OSError, ImageError) as exc:
        return exc


def classify_files(
    classifier: Classifier,
    files: list[Path],
    top_k: int,
    batch_size: int,
    progress: bool = True,
    decode_threads: int = 2,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with (
        tqdm(total=len(files), unit="image", disable=not progress, file=sys.stderr) as bar,
        ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") as decoders,
    ):
        for batch in _batches(files, batch_size):
            prepared: list[tuple[Path, np.ndarray]] = []
            # Decoding and resizing run in parallel threads (Pillow releases the GIL).
            for path, pixels in zip(batch, decoders.map(lambda path: _prepare(classifier, path), batch)):
                if isinstance(pixels, Exception):
                    log.warning("skipping %s: %s", path, pixels)
                    outcomes.append(Outcome(str(path), error=str(pixels)))
                else:
                    prepared.append((path, pixels))
            if prepared:
                probabilities = classifier.probabilities(np.stack([pixels for _, pixels in prepared]))
                for (path, _), row in zip(prepared, probabilities):
                    outcomes.append(Outcome(str(path), answer=classifier.answer(row, top_k)))
            bar.update(len(batch))
    order = {str(path): index for index, path in enumerate(files)}
    outcomes.sort(key=lambda outcome: order[outcome.file])
    return outcomes


def write_csv(outcomes: list[Outcome], stream: TextIO) -> None:
    writer = csv.DictWriter(stream, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for outcome in outcomes:
        if outcome.answer is None:
            writer.writerow({"file": outcome.file, "error": outcome.error})
            continue
        for rank, entry in enumerate(outcome.answer["top_k"], start=1):
            writer.writerow({"file": outcome.file, "rank": rank, **entry, "error": ""})


def write_json(outcomes: list[Outcome], stream: TextIO) -> None:
    documents = []
    for outcome in outcomes:
        if outcome.answer is None:
            documents.append({"file": outcome.file, "error": outcome.error})
        else:
            answer = outcome.answer
            documents.append(
                {"file": outcome.file, **{key: answer[key] for key in ("class", "index", "probability", "top_k")}}
            )
    json.dump(documents, stream, indent=2)
    stream.write("\n")


def run(
    classifier: Classifier,
    paths: Sequence[Path],
    output: Path | None,
    top_k: int,
    batch_size: int,
    progress: bool = True,
    decode_threads: int = 2,
) -> int:
    """Classify, write the results; exit status 1 if any file failed (or none was found), else 0."""
    files, missing = collect_files(paths)
    for outcome in missing:
        log.warning("skipping %s: %s", outcome.file, outcome.error)
    outcomes = missing + classify_files(classifier, files, top_k, batch_size, progress, decode_threads)
    writer = write_json if output is not None and output.suffix.lower() == ".json" else write_csv
    if output is None:
        writer(outcomes, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as stream:
            writer(outcomes, stream)
    failed = sum(outcome.answer is None for outcome in outcomes)
    log.info("classified %d of %d files%s", len(outcomes) - failed, len(outcomes), f"; {failed} failed" if failed else "")
    if not outcomes:
        log.error("no image files found in %s", ", ".join(map(str, paths)))
    return 1 if failed or not outcomes else 0
