#!/usr/bin/env bash
# Compares this server with LitServe on this machine: the same model, the same uploads, one run.
#
#   scripts/bench-litserve.sh WEIGHTS.pth [bench_peer.py options, e.g. --photos DIR --concurrency 1 16 --duration-s 15]
#   DENSENET_MODEL=shufflenet_v2_x0_5 scripts/bench-litserve.sh SHUFFLENET.pth ...   # any --model
#
# The model is the server's: DENSENET_MODEL (densenet121 by default) reaches both the export and the
# server bench_peer.py starts, and the peer reads the categories and preprocessing from the export.
# LitServe (0.2.19, PyPI) goes into its own virtualenv outside the repo ($LITSERVE_VENV, default
# /tmp/litserve-venv) with onnxruntime, numpy and pillow at the versions of our .venv, and
# python-multipart; no torch. It serves scripts/litserve_peer_server.py: LitServe's batched-API pattern
# (decode_request decodes and preprocesses with densenet_server's own code, batching, predict on ONNX
# Runtime) on the ONNX export of WEIGHTS made by `densenet-server export` (the same file our server
# caches for these weights). Layout: LITSERVE_WORKERS inference processes (default 0: one per usable
# CPU) x LITSERVE_ORT_THREADS ONNX Runtime threads each (default 1), batches of up to
# LITSERVE_BATCH_SIZE (default 4) within LITSERVE_BATCH_TIMEOUT_MS (default 5), LITSERVE_API_SERVERS
# HTTP processes (default 0: LitServe's own default, one per worker), on LITSERVE_PORT (default 8000).
# Then scripts/bench_peer.py drives both servers, LitServe stopped (SIGSTOP) while ours is driven: its idle
# inference workers poll their queue every millisecond. Needs .venv (scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:?usage: scripts/bench-litserve.sh WEIGHTS.pth [bench_peer.py options]}
shift
venv=${LITSERVE_VENV:-/tmp/litserve-venv}
workers=${LITSERVE_WORKERS:-0}
threads=${LITSERVE_ORT_THREADS:-1}
batch=${LITSERVE_BATCH_SIZE:-4}
batch_timeout_ms=${LITSERVE_BATCH_TIMEOUT_MS:-5}
api_servers=${LITSERVE_API_SERVERS:-0}
port=${LITSERVE_PORT:-8000}
work=$(mktemp -d)
ls_pid=
cleanup() {
    # The server runs in its own session (setsid): its process group holds the HTTP and inference processes.
    if [ -n "$ls_pid" ]; then
        kill -TERM -- "-$ls_pid" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 -- "-$ls_pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$ls_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

[ -x .venv/bin/python ] || { echo "no .venv: run scripts/bootstrap.sh first" >&2; exit 1; }
# The peer's numerical libraries at our versions, so that only the serving differs.
pins=$(.venv/bin/python -c 'from importlib.metadata import version as v; print(" ".join(f"{p}=={v(p)}" for p in ("onnxruntime", "numpy", "pillow")))')
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
# shellcheck disable=SC2086  # $pins is a list of requirements
"$venv/bin/pip" install --quiet litserve==0.2.19 python-multipart $pins

.venv/bin/densenet-server export --weights "$weights" --output "$work/model.onnx" >"$work/export.log" 2>&1 \
    || { cat "$work/export.log"; exit 1; }
PYTHONPATH=src setsid "$venv/bin/python" scripts/litserve_peer_server.py --onnx "$work/model.onnx" \
    --port "$port" --workers "$workers" --ort-threads "$threads" --max-batch-size "$batch" \
    --batch-timeout-ms "$batch_timeout_ms" --api-servers "$api_servers" >"$work/litserve.log" 2>&1 &
ls_pid=$!
url=http://127.0.0.1:$port/predict
for _ in $(seq 120); do
    [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: image/jpeg' \
        --data-binary @images/cat.jpg "$url")" = 200 ] && break
    kill -0 "$ls_pid" 2>/dev/null || break
    sleep 1
done
answer=$(curl -s -m 10 -X POST -H 'Content-Type: image/jpeg' --data-binary @images/cat.jpg "$url") \
    && [[ $answer == *predictions* ]] \
    || { cat "$work/litserve.log"; echo "LitServe did not start" >&2; exit 1; }
head -1 "$work/litserve.log"
layout=$(sed -n 's/^LitServe [^:]*: \(.*\) worker(s) x \(.*\) ORT thread(s).*/\1 workers x \2 ORT threads/p' "$work/litserve.log" | head -1)
name="LitServe 0.2.19 (${layout:-$workers workers x $threads ORT threads}, batch $batch, $batch_timeout_ms ms)"
.venv/bin/python scripts/bench_peer.py --weights "$weights" --peer-url "$url" --peer-pid "$ls_pid" \
    --peer-name "$name" --pause-peer "$@"
