#!/usr/bin/env bash
# Mutation testing of the answer path: mutmut changes decoding.py, preprocess.py, resize_strips.py,
# postprocess.py, weights.py, routes/v2_tensors.py and the export rule (backends/export_verdict.py) one
# small edit at a time ([tool.mutmut] in pyproject.toml) and runs, for each mutant, the unit tests that
# reach the function it changed. A mutant no test notices "survives".
# Not run by CI (scripts/test.sh): it takes minutes. docs/testing.md ("Mutation testing") has the score
# and the reason each survivor changes no answer; this script fails if a survivor is not named there.
#
#   scripts/mutation.sh                               # every mutant, from a fresh copy of the tree
#   scripts/mutation.sh "densenet_server.weights*"    # only these (mutmut's names, globs allowed)
#   MUTATION_JOBS=1 scripts/mutation.sh               # mutants tested at once (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,mutation
# mutmut keeps results in mutants/ and reuses them for functions it thinks unchanged; a fresh copy makes
# the score that of the tree as it is now.
rm -rf mutants
.venv/bin/mutmut run --max-children "${MUTATION_JOBS:-2}" "$@"
.venv/bin/python - <<'EOF'
"""The score per module, the survivors, and whether docs/testing.md explains each of them."""
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = ("killed", "timeout")  # a mutant that hangs the tests is caught too (mutmut's own rule)
explained = Path("docs/testing.md").read_text(encoding="utf-8")
unexplained: list[str] = []
never_killed: list[str] = []
print(f"\n{'module':<34} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'other':>5} {'score':>6}")
for meta in sorted(Path("mutants/src").rglob("*.py.meta")):
    module = meta.relative_to("mutants/src").as_posix().removesuffix(".py.meta")
    statuses = {
        name: status_by_exit_code[code]
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()
        if code is not None  # not checked in this run (a subset was asked for)
    }
    if not statuses:
        continue
    counts = Counter(statuses.values())
    other = len(statuses) - sum(counts[s] for s in (*KILLED, "survived"))
    score = sum(counts[s] for s in KILLED) / len(statuses)
    print(
        f"{module:<34} {len(statuses):>7} {counts['killed']:>6} {counts['timeout']:>7} "
        f"{counts['survived']:>8} {other:>5} {score:>6.1%}"
    )
    if counts["killed"] == 0:
        never_killed.append(module)
    for name, status in sorted(statuses.items()):
        if status not in KILLED:
            known = name in explained
            print(f"    {status:<10} {name}{'' if known else '   <- not explained in docs/testing.md'}")
            if not known:
                unexplained.append(name)
if never_killed:
    # The tests must import the mutated copy in mutants/src, not the editable install's src/: a module
    # none of whose mutants fails a test is what importing the original would look like.
    sys.exit(f"no mutant of {', '.join(never_killed)} was killed: are the tests importing mutants/src?")
if unexplained:
    sys.exit(f"{len(unexplained)} mutants survive unexplained: `.venv/bin/mutmut show NAME` shows one")
EOF
