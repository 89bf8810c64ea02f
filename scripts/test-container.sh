#!/usr/bin/env bash
# Builds the container image and checks it end to end: healthcheck, routes, a torch-free runtime serving the
# ONNX export, sizing to the container's CPU quota, non-root uid, read-only mounts, graceful SIGTERM, and
# answers identical to the local server's for the same image and weights.
#
# Environment (so other tooling can drive it unchanged):
#   CONTAINER_ENGINE  docker | podman (default: docker if its engine answers, else podman)
#   BASE_IMAGE        passed as the BASE_IMAGE build arg (default python:3.11-slim)
#   WEIGHTS_FILE      a local checkpoint to bake in (default: a seeded random fixture made here)
#   TORCH_INDEX_URL   torch wheel index for the build; a file:// index is mounted into the build (podman)
#   CONTAINER_NETWORK host: run with the host network, the server bound to 127.0.0.1 (for machines where
#                     port publishing does not work); default: publish 127.0.0.1:PORT
#   BUILD_OPTS        extra build options (split on spaces)
#   CONTAINER_CPUS    the --cpus quota the container runs under, which the server must size itself to
#                     (default 2; empty: no quota and no check)
# Uses .venv with PyTorch for the fixture weights and the local reference server, and makes it when it is
# missing or lacks PyTorch (scripts/bootstrap.sh torch; TORCH_INDEX_URL applies there too). Needs curl.
# Takes minutes (the build stage installs PyTorch), so the test suite does not run it; see README "Containers".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    # A docker client without a reachable engine (podman machines often have one) does not count.
    if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then engine=docker
    elif command -v podman >/dev/null 2>&1; then engine=podman
    else echo "no container engine: neither a docker engine that answers nor podman" >&2; exit 1
    fi
fi
image=localhost/densenet-server:container-test
name=densenet-container-test-$$
port=${PORT:-5077}
local_port=$((port + 1))
grace=30
cpus=${CONTAINER_CPUS-2}
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v curl >/dev/null 2>&1 || fail "curl is needed"
# The fixture weights and the reference server need PyTorch in .venv: make it here rather than rely on
# scripts/test.sh having run in this checkout.
if ! .venv/bin/python -c "import densenet_server, torch, torchvision" 2>/dev/null || [ ! -x .venv/bin/densenet-server ]; then
    step "bootstrap .venv with the torch extra"
    scripts/bootstrap.sh torch
fi

local_pid=
cleanup() {
    "$engine" rm -f "$name" >/dev/null 2>&1 || true
    [ -n "$local_pid" ] && kill "$local_pid" 2>/dev/null && wait "$local_pid" 2>/dev/null || true
    rm -rf "$work"
}
work=$(mktemp -d)
trap cleanup EXIT

# ---- weights: must sit inside the build context's weights/ folder ----
step "weights"
context_weights=weights/.container-test.pth
if [ -n "${WEIGHTS_FILE:-}" ]; then
    cp "$WEIGHTS_FILE" "$context_weights"
else
    .venv/bin/python tests/support/random_weights.py "$context_weights"
fi
sha256sum "$context_weights"

# ---- build ----
step "build with $engine"
build=(--build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}" --build-arg "WEIGHTS_FILE=$context_weights")
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    build+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
    case "$TORCH_INDEX_URL" in
        file://*) index_root=$(dirname "${TORCH_INDEX_URL#file://}"); build+=(-v "$index_root:$index_root:ro") ;;
    esac
fi
if [ "$engine" = podman ]; then
    # HEALTHCHECK survives only in the docker format; host network + CA bundle reach the package index.
    build+=(--format docker --network host)
    [ -f /etc/ssl/certs/ca-certificates.crt ] && build+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi
# shellcheck disable=SC2206
build+=(${BUILD_OPTS:-})
start=$(date +%s)
"$engine" build "${build[@]}" -t "$image" .
echo "build took $(( $(date +%s) - start )) s"
size=$("$engine" image inspect -f '{{.Size}}' "$image")

# ---- run: read-only root, read-only images mount, no capabilities ----
step "run"
cp -r images "$work/images"
run=(-d --name "$name" --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges
     -v "$work/images:/app/images:ro")
[ -n "$cpus" ] && run+=(--cpus "$cpus")
if [ "${CONTAINER_NETWORK:-}" = host ]; then
    run+=(--network host -e DENSENET_HOST=127.0.0.1 -e "DENSENET_PORT=$port")
else
    run+=(-p "127.0.0.1:$port:5000")
fi
url=http://127.0.0.1:$port
t0=$(date +%s.%N)
"$engine" run "${run[@]}" "$image" >/dev/null
until curl -fsS -o /dev/null "$url/ready" 2>/dev/null; do
    [ "$("$engine" inspect -f '{{.State.Running}}' "$name")" = true ] || { "$engine" logs "$name"; fail "container exited"; }
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{exit !(b-a > 120)}' && fail "not ready within 120 s"
    sleep 0.1
done
ready_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
echo "ready after $ready_s s"

step "healthcheck reports healthy"
for _ in $(seq 60); do
    if [ "$engine" = podman ]; then
        podman healthcheck run "$name" >/dev/null 2>&1 && status=healthy || status=unhealthy
    else
        status=$(docker inspect -f '{{.State.Health.Status}}' "$name")
    fi
    [ "$status" = healthy ] && break
    sleep 2
done
[ "$status" = healthy ] || fail "healthcheck: $status"
echo "$status"

step "routes"
curl -fsS "$url/" | tee "$work/live.json"; echo
curl -fsS "$url/ready"; echo
curl -fsS "$url/inference/cat.jpg" > "$work/container.json"; cat "$work/container.json"; echo
curl -fsS -F "file=@images/coffee.jpg" "$url/inference" > "$work/upload.json"; head -c 300 "$work/upload.json"; echo
curl -fsS "$url/v2/health/ready" -o /dev/null -w 'v2 ready: %{http_code}\n'
curl -fsS "$url/v2/models/densenet121" | head -c 300; echo
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/inference/missing.jpg")
[ "$code" = 404 ] || fail "missing image answered $code"

step "sized to the container's CPU quota (--cpus ${cpus:-unset})"
# serve logs the CPUs it found and where the count came from (src/densenet_server/cpus.py) at start-up:
# "usable CPUs: N (source)", or "N usable CPUs (source)" in the layout line.
cpu_line=$("$engine" logs "$name" 2>&1 | grep -m1 'usable CPUs' || true)
[ -n "$cpu_line" ] || cpu_line="(no usable-CPUs line in the container log)"
echo "$cpu_line"
if [ -n "$cpus" ]; then
    # --cpus 1.5 lets 2 threads run: the server rounds a quota up.
    expected=$(awk -v c="$cpus" 'BEGIN{n = int(c); if (n < c) n++; print n}')
    case "$cpu_line" in
        *"usable CPUs: $expected ("*"cgroup v"* | *" $expected usable CPUs ("*"cgroup v"*) ;;
        *) fail "expected 'usable CPUs: $expected' from the cgroup quota of --cpus $cpus" ;;
    esac
fi

step "torch-free runtime serving the verified ONNX export"
"$engine" exec "$name" python -c "import torch" 2>/dev/null && fail "torch is installed in the runtime image"
.venv/bin/python - "$work/container.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
print(f"backend {answer['backend']} {answer['precision']}, weights {answer['weights']}")
if (answer["backend"], answer["precision"]) != ("onnxruntime", "fp32"):
    sys.exit("FAIL: the container does not serve the ONNX model in fp32")
PY
echo "no torch in the runtime image"

step "non-root, read-only"
uid=$("$engine" exec "$name" id -u)
[ "$uid" != 0 ] || fail "runs as root"
pid1=$("$engine" exec "$name" cat /proc/1/cmdline | tr '\0' ' ')
echo "uid $uid; PID 1: $pid1"
case "$pid1" in *densenet-server*serve*) ;; *) fail "PID 1 is not the server: $pid1" ;; esac
"$engine" exec "$name" sh -c 'touch /app/images/x' 2>/dev/null && fail "images mount is writable"
"$engine" exec "$name" sh -c 'touch /opt/model/x' 2>/dev/null && fail "root filesystem is writable"
echo "images mount and root filesystem are read-only"

step "same answer as the local server (same weights, same image)"
DENSENET_LOG_LEVEL=warning DENSENET_ACCESS_LOG=off .venv/bin/densenet-server serve --host 127.0.0.1 --port "$local_port" \
    --weights "$context_weights" --images-dir images --threads 1 &
local_pid=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$local_port/ready" 2>/dev/null; do
    kill -0 "$local_pid" || fail "local server exited"
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$local_port/inference/cat.jpg" > "$work/local.json"
kill "$local_pid"; wait "$local_pid" || true; local_pid=
.venv/bin/python - "$work/container.json" "$work/local.json" <<'PY'
import json, sys
container, local = (json.load(open(path)) for path in sys.argv[1:3])
indices = [[entry["index"] for entry in answer["top_k"]] for answer in (container, local)]
diff = max(abs(a["probability"] - b["probability"]) for a, b in zip(container["top_k"], local["top_k"]))
print(f"top-k container {indices[0]} local {indices[1]}; largest probability difference {diff:.2e}")
# "weights" names the file and its SHA-256 prefix; the file names differ (baked vs local), the hash must not.
hashes = [answer["weights"].rsplit("sha256:", 1)[-1] for answer in (container, local)]
print(f"weights sha256 container {hashes[0]} local {hashes[1]}")
if indices[0] != indices[1] or hashes[0] != hashes[1]:
    sys.exit("FAIL: the container's answer differs from the local server's")
PY

step "SIGTERM stops it cleanly"
t0=$(date +%s.%N)
"$engine" kill --signal TERM "$name" >/dev/null
exit_code=$("$engine" wait "$name")
stop_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
echo "exit code $exit_code after $stop_s s"
[ "$exit_code" = 0 ] || { "$engine" logs --tail 20 "$name"; fail "exit code $exit_code"; }
awk -v s="$stop_s" -v g="$grace" 'BEGIN{exit !(s < g)}' || fail "took longer than the $grace s grace period"

step "summary"
echo "engine $engine; base ${BASE_IMAGE:-python:3.11-slim}"
echo "image size: $((size / 1000000)) MB"
echo "time to ready: $ready_s s"
echo "PASS"
