#!/usr/bin/env bash
# One line: the CPU's model, the count of online CPUs, and the vector extensions that ONNX Runtime's and
# PyTorch's kernels are chosen by (SSE4.2, AVX, AVX2, FMA, AVX-512 and its parts, VNNI, AMX).
# .ci/run prints it first. CPUINFO names another file to read than /proc/cpuinfo (the test's).
set -euo pipefail
cpuinfo=${CPUINFO:-/proc/cpuinfo}
model=$(awk -F': ' '/^model name/ {print $2; exit}' "$cpuinfo")
flags=$(awk -F': ' '/^flags/ {print $2; exit}' "$cpuinfo")
vector=$(tr ' ' '\n' <<<"$flags" | grep -E '^(sse4_2|avx|avx2|fma|avx512[a-z_0-9]*|avx_vnni|amx[a-z_0-9]*)$' | tr '\n' ' ' || true)
echo "CPU: ${model:-unknown} x $(getconf _NPROCESSORS_ONLN); vector extensions: ${vector% }"
