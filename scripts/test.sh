#!/usr/bin/env bash
# Installs everything the test suite needs and runs it. Arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
exec .venv/bin/python -m pytest "$@"
