#!/usr/bin/env bash
# Installs the server into .venv and starts it on port 5000, serving ./images. Flags are passed on,
# e.g. scripts/serve.sh --weights densenet121.pth
set -euo pipefail
cd "$(dirname "$0")/.."
# The torch extra: the first start exports the published weights to ONNX (then cached) and verifies it.
scripts/bootstrap.sh torch
exec .venv/bin/densenet-server serve "$@"
