#!/usr/bin/env sh
# Builds the server's image and runs it on port 5000, serving ./images read-only.
#   sh run_docker.sh                          # docker, or podman when docker is missing
#   CONTAINER_ENGINE=podman sh run_docker.sh
#   WEIGHTS_FILE=weights/densenet121.pth sh run_docker.sh   # bake a local checkpoint (must be under weights/)
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
image=${IMAGE:-densenet-server:latest}
port=${PORT:-5000}
# HOST_IP=127.0.0.1 publishes on loopback only (default: every interface, like `docker run -p 5000:5000`).
publish=${HOST_IP:+$HOST_IP:}$port:5000
set -- --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}"
[ -n "${WEIGHTS_FILE:-}" ] && set -- "$@" --build-arg "WEIGHTS_FILE=$WEIGHTS_FILE"
# podman keeps HEALTHCHECK only in the docker image format.
[ "$engine" = podman ] && set -- "$@" --format docker
# shellcheck disable=SC2086  # BUILD_ARGS is split on purpose
"$engine" build "$@" ${BUILD_ARGS:-} -t "$image" .
echo
echo "Starting $image on port $port (Ctrl-C stops it). Try, from another terminal:"
echo "    curl http://localhost:$port/inference/cat.jpg"
echo
exec "$engine" run --rm -p "$publish" -v "$PWD/images:/app/images:ro" --name densenet-server "$image"
