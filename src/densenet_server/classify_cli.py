"""`densenet-server classify PATH...`: classify files and folders in-process (no server), in batches, through
the service's own call for a batch of images (local_service.py).

Output (CSV or JSON, chosen by the --output file's suffix; CSV on stdout without --output):
- CSV: one row per file and rank, columns ``file,rank,index,label,probability,error``; a file that could
  not be classified has one row with an empty rank/index/label/probability and the reason in ``error``.
  A multi-label model's rows are its top-k classes and then every other class at or above its threshold,
  with one more column, ``at_or_above_threshold`` (``true`` or ``false``).
- JSON: a list, one object per file: ``{"file", "class", "index", "probability", "top_k": [{"index",
  "label", "probability"}, ...]}`` (a multi-label model's add ``"labels"`` and ``"threshold"``, as its HTTP
  answers do) or ``{"file", "error"}``.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from .local_service import file_probabilities
from .postprocess import build_answer
from .service import InferenceService

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CSV_COLUMNS = ["file", "rank", "index", "label", "probability", "error"]
MULTI_LABEL_COLUMN = "at_or_above_threshold"
# What the JSON output keeps of an answer (the rest describes the model, the same for every file).
JSON_KEYS = ("class", "index", "probability", "top_k")
MULTI_LABEL_JSON_KEYS = ("labels", "threshold")


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


def classify_files(service: InferenceService, files: list[Path], top_k: int, progress: bool = True) -> list[Outcome]:
    outcomes: list[Outcome] = []
    info = service.info
    with tqdm(total=len(files), unit="image", disable=not progress, file=sys.stderr) as bar:
        for path, result in file_probabilities(service, files):
            if isinstance(result, np.ndarray):
                outcomes.append(Outcome(str(path), answer=build_answer(info, result, top_k)))
            else:
                log.warning("skipping %s: %s", path, result)
                outcomes.append(Outcome(str(path), error=str(result)))
            bar.update(1)
    return outcomes


def write_csv(outcomes: list[Outcome], stream: TextIO, multi_label: bool = False) -> None:
    columns = [*CSV_COLUMNS, MULTI_LABEL_COLUMN] if multi_label else CSV_COLUMNS
    writer = csv.DictWriter(stream, columns, lineterminator="\n")
    writer.writeheader()
    for outcome in outcomes:
        if outcome.answer is None:
            writer.writerow({"file": outcome.file, "error": outcome.error})
            continue
        for rank, row in enumerate(_ranked_rows(outcome.answer, multi_label), start=1):
            writer.writerow({"file": outcome.file, "rank": rank, **row, "error": ""})


def _ranked_rows(answer: dict[str, Any], multi_label: bool) -> list[dict[str, Any]]:
    """The answer's top-k classes; a multi-label model's also every other class at or above its threshold
    (they rank after the top-k: both lists are by probability), each marked whether it is."""
    if not multi_label:
        return answer["top_k"]
    labelled = {entry["index"] for entry in answer["labels"]}
    shown = {entry["index"] for entry in answer["top_k"]}
    rows = answer["top_k"] + [entry for entry in answer["labels"] if entry["index"] not in shown]
    return [{**row, MULTI_LABEL_COLUMN: str(row["index"] in labelled).lower()} for row in rows]


def write_json(outcomes: list[Outcome], stream: TextIO, multi_label: bool = False) -> None:
    keys = (*JSON_KEYS, *MULTI_LABEL_JSON_KEYS) if multi_label else JSON_KEYS
    documents = [
        {"file": outcome.file, "error": outcome.error}
        if outcome.answer is None
        else {"file": outcome.file, **{key: outcome.answer[key] for key in keys}}
        for outcome in outcomes
    ]
    json.dump(documents, stream, indent=2)
    stream.write("\n")


def run(service: InferenceService, paths: Sequence[Path], output: Path | None, top_k: int, progress: bool = True) -> int:
    """Classify, write the results; exit status 1 if any file failed (or none was found), else 0."""
    files, missing = collect_files(paths)
    for outcome in missing:
        log.warning("skipping %s: %s", outcome.file, outcome.error)
    outcomes = missing + classify_files(service, files, top_k, progress)
    writer = write_json if output is not None and output.suffix.lower() == ".json" else write_csv
    multi_label = service.info.record.multi_label
    if output is None:
        writer(outcomes, sys.stdout, multi_label)
    else:
        with output.open("w", encoding="utf-8", newline="") as stream:
            writer(outcomes, stream, multi_label)
    failed = sum(outcome.answer is None for outcome in outcomes)
    log.info("classified %d of %d files%s", len(outcomes) - failed, len(outcomes), f"; {failed} failed" if failed else "")
    if not outcomes:
        log.error("no image files found in %s", ", ".join(map(str, paths)))
    return 1 if failed or not outcomes else 0
