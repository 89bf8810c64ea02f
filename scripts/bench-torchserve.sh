#!/usr/bin/env bash
# Compares this server with TorchServe on this machine: the same weights, the same uploads, one run.
#
#   scripts/bench-torchserve.sh WEIGHTS.pth [bench_peer.py options, e.g. --photos DIR --duration-s 15]
#
# TorchServe (0.12.0, PyPI; needs Java 11+) goes into its own virtualenv outside the repo
# ($TORCHSERVE_VENV, default /tmp/torchserve-venv), with the same torch as ours. The model is the same
# DenseNet-121 loaded from WEIGHTS (legacy keys remapped by our loader), traced to TorchScript and served
# by TorchServe's stock image_classifier handler (its preprocessing is torchvision's: resize 256, crop
# 224, normalise) with dynamic batching as TorchServe documents it: TS_BATCH_SIZE (default 4) within
# TS_MAX_BATCH_DELAY ms (default 5), TS_WORKERS workers (default 1). Needs .venv (scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:?usage: scripts/bench-torchserve.sh WEIGHTS.pth [bench_peer.py options]}
shift
venv=${TORCHSERVE_VENV:-/tmp/torchserve-venv}
work=$(mktemp -d)
ts_pid=
cleanup() {
    # `torchserve --stop` reports "not running" when started from another folder: end the frontend itself.
    [ -n "$ts_pid" ] && kill "$ts_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x "$venv/bin/torchserve" ]; then
    python3 -m venv "$venv"
    # captum, pyyaml, psutil and packaging are imported by TorchServe's worker but not declared by it.
    "$venv/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1 torchserve==0.12.0 \
        torch-model-archiver==0.12.0 captum pyyaml psutil packaging pillow
fi

PYTHONPATH=src "$venv/bin/python" - "$weights" "$work/densenet121.pt" <<'PY'
import sys, torch
from densenet_server.model import load_local_weights
module = load_local_weights(sys.argv[1]).module.eval()
torch.jit.trace(module, torch.zeros(1, 3, 224, 224)).save(sys.argv[2])
PY
mkdir "$work/store"
"$venv/bin/torch-model-archiver" --model-name densenet121 --version 1.0 --handler image_classifier \
    --serialized-file "$work/densenet121.pt" --export-path "$work/store"
cat > "$work/config.properties" <<EOF
inference_address=http://127.0.0.1:${TS_PORT:-8080}
management_address=http://127.0.0.1:$(( ${TS_PORT:-8080} + 1 ))
metrics_address=http://127.0.0.1:$(( ${TS_PORT:-8080} + 2 ))
disable_token_authorization=true
models={"densenet121": {"1.0": {"marName": "densenet121.mar", "minWorkers": ${TS_WORKERS:-1}, "maxWorkers": ${TS_WORKERS:-1}, "batchSize": ${TS_BATCH_SIZE:-4}, "maxBatchDelay": ${TS_MAX_BATCH_DELAY:-5}, "responseTimeout": 120}}}
EOF
(cd "$work" && PATH="$venv/bin:$PATH" torchserve --start --ncs --model-store store --models densenet121=densenet121.mar \
    --ts-config config.properties --disable-token-auth >"$work/torchserve.log" 2>&1)
url=http://127.0.0.1:${TS_PORT:-8080}/predictions/densenet121
for _ in $(seq 120); do
    [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$url" -T images/cat.jpg)" = 200 ] && break
    sleep 1
done
ts_pid=$(pgrep -f org.pytorch.serve.ModelServer | head -1)
[ -n "$ts_pid" ] || { cat "$work/torchserve.log"; echo "TorchServe did not start" >&2; exit 1; }
name="TorchServe 0.12 (${TS_WORKERS:-1} worker(s), batch ${TS_BATCH_SIZE:-4}, ${TS_MAX_BATCH_DELAY:-5} ms)"
.venv/bin/python scripts/bench_peer.py --weights "$weights" --peer-url "$url" --peer-pid "$ts_pid" \
    --peer-name "$name" "$@"
