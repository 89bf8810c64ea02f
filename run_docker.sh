#!/usr/bin/env sh
# Builds the server's image and runs it on port 5000 (and gRPC on 8081), serving ./images read-only.
#   sh run_docker.sh                          # docker, or podman when docker is missing
#   CONTAINER_ENGINE=podman sh run_docker.sh
#   WEIGHTS_FILE=weights/densenet121.pth sh run_docker.sh   # bake a local checkpoint (must be under weights/)
#   MODEL=resnet50 sh run_docker.sh           # another torchvision classifier (its published weights, or WEIGHTS_FILE)
#   WEIGHTS_FILE=weights/xray.pth LABELS_FILE=weights/xray-labels.txt MULTI_LABEL=1 sh run_docker.sh
#                                             # a fine-tuned model with its own classes, multi-label
#   GPU=1 sh run_docker.sh                    # the CUDA image (Dockerfile target cuda) on the host's NVIDIA GPUs
# Extra `docker build` arguments can be given in BUILD_ARGS (e.g. BUILD_ARGS="--build-arg BASE_IMAGE=...").
set -eu
cd "$(dirname "$0")"
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1; then engine=docker
    elif command -v podman >/dev/null 2>&1; then engine=podman
    else echo "neither docker nor podman found; set CONTAINER_ENGINE" >&2; exit 1
    fi
fi
# The CUDA image gets its own tag, so switching between the two never builds one over the other.
case ${GPU:-0} in
    0) gpu= tag=latest ;;
    1) gpu=1 tag=cuda ;;
    *) echo "GPU must be 0 or 1 (got '$GPU')" >&2; exit 2 ;;
esac
# Multi-label (a sigmoid per class) is how the model is served, not built: an environment variable of the run.
case ${MULTI_LABEL:-0} in
    0) multi_label= ;;
    1) multi_label=1 ;;
    *) echo "MULTI_LABEL must be 0 or 1 (got '$MULTI_LABEL')" >&2; exit 2 ;;
esac
image=${IMAGE:-densenet-server:$tag}
port=${PORT:-5000}
# HOST_IP=127.0.0.1 publishes on loopback only (default: every interface, like `docker run -p 5000:5000`).
publish=${HOST_IP:+$HOST_IP:}$port:5000
grpc_port=${GRPC_PORT:-8081}
publish_grpc=${HOST_IP:+$HOST_IP:}$grpc_port:8081
set -- --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}"
[ -n "${MODEL:-}" ] && set -- "$@" --build-arg "DENSENET_MODEL=$MODEL"
[ -n "${WEIGHTS_FILE:-}" ] && set -- "$@" --build-arg "WEIGHTS_FILE=$WEIGHTS_FILE"
[ -n "${LABELS_FILE:-}" ] && set -- "$@" --build-arg "LABELS_FILE=$LABELS_FILE"
[ -n "$gpu" ] && set -- "$@" --target cuda
# podman keeps HEALTHCHECK only in the docker image format.
[ "$engine" = podman ] && set -- "$@" --format docker
# shellcheck disable=SC2086  # BUILD_ARGS is split on purpose
"$engine" build "$@" ${BUILD_ARGS:-} -t "$image" .
# GPUs: docker's --gpus goes through the NVIDIA Container Toolkit; podman takes the GPUs as CDI devices
# (older podman has no --gpus; `nvidia-ctk cdi generate` writes their spec once per host).
set --
if [ -n "$gpu" ]; then
    if [ "$engine" = podman ]; then set -- --device nvidia.com/gpu=all
    else set -- --gpus all
    fi
fi
[ -n "$multi_label" ] && set -- "$@" -e DENSENET_MULTI_LABEL=true
echo
echo "Starting $image on port $port (Ctrl-C stops it). Try, from another terminal:"
echo "    curl http://localhost:$port/inference/cat.jpg"
echo "gRPC (Open Inference Protocol v2, e.g. tritonclient.grpc) answers on localhost:$grpc_port."
echo
exec "$engine" run --rm "$@" -p "$publish" -p "$publish_grpc" -v "$PWD/images:/app/images:ro" --name densenet-server "$image"
