#!/usr/bin/env bash
# Creates .venv and installs the project into it (with the extras named in $1, e.g. "test").
# PyPI's torch wheels are CUDA builds (several GB); set TORCH_INDEX_URL to PyTorch's CPU wheel index
# (https://download.pytorch.org/whl/cpu) to get the ~200 MB CPU builds instead.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
[ -x .venv/bin/python ] || python3 -m venv .venv
index_args=()
[ -n "${TORCH_INDEX_URL:-}" ] && index_args=(--extra-index-url "$TORCH_INDEX_URL")
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${index_args[@]}" -e ".${extras:+[$extras]}"
