#!/usr/bin/env bash
# Runs the GPU tests (tests/gpu, marker `gpu`) on a machine with CUDA, with the PyTorch already installed
# there: nothing here installs or replaces torch or torchvision (the CUDA path needs torch >= 2.4).
#
#   scripts/test-gpu.sh [pytest arguments]
#
# PYTHON   the interpreter whose torch to use (default: python3)
# WHEELS   a folder of wheels: test dependencies missing from PYTHON are installed from it with
#          pip --no-index --no-deps (the folder must hold their own dependencies too); unset: they are listed
#
# The sources run from src/ (PYTHONPATH), so the project itself is not installed either. Figures measured
# by the tests (agreement per precision, nvJPEG against Pillow, warm-up time, GPU memory) are printed in the
# "PASSES" section.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" - <<'EOF'
import sys

try:
    import torch
    import torchvision
except ImportError as exc:
    sys.exit(f"test-gpu.sh: PyTorch and torchvision must be installed for {sys.executable}: {exc}")
version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), torchvision {torchvision.__version__}, "
      f"{torch.cuda.device_count()} CUDA device(s)")
if version < (2, 4):
    sys.exit("test-gpu.sh: the CUDA path needs torch >= 2.4")
if not torch.cuda.is_available():
    sys.exit("test-gpu.sh: PyTorch sees no CUDA device here; the GPU tests would all be skipped")
EOF

# import name -> distribution, for what the tests import besides torch (with the dependencies pip --no-deps
# will not fetch). pytest-timeout is optional: without it the `timeout` setting only warns.
declare -A DISTRIBUTIONS=(
    [numpy]=numpy [PIL]=pillow [onnxruntime]=onnxruntime [flatbuffers]=flatbuffers [google.protobuf]=protobuf
    [packaging]=packaging [requests]=requests [urllib3]=urllib3 [idna]=idna [certifi]=certifi
    [charset_normalizer]=charset-normalizer [pytest]=pytest [pluggy]=pluggy [iniconfig]=iniconfig
    [pygments]=pygments
)
missing=()
for module in "${!DISTRIBUTIONS[@]}"; do
    if ! "$PYTHON" -c "import $module" 2>/dev/null; then
        missing+=("${DISTRIBUTIONS[$module]}")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ -z "${WHEELS:-}" ]; then
        echo "test-gpu.sh: missing for $PYTHON: ${missing[*]}" >&2
        echo "  install them (without touching torch), or set WHEELS to a folder of their wheels" >&2
        exit 1
    fi
    "$PYTHON" -m pip install --no-index --no-deps --find-links "$WHEELS" "${missing[@]}"
fi

PYTHONPATH=src exec "$PYTHON" -m pytest -m gpu tests/gpu -p no:cacheprovider -rP "$@"
