# syntax=docker/dockerfile:1
# DenseNet-121 image classification server: gunicorn + Flask + PyTorch (CPU), model weights baked in.
#
#   docker build -t densenet-server .                          # downloads the published weights at build time
#   docker build --build-arg WEIGHTS_FILE=weights/densenet121.pth -t densenet-server .   # a local checkpoint
#   docker run --rm -p 5000:5000 -v "$PWD/images:/app/images:ro" densenet-server
#
# Build arguments:
#   BASE_IMAGE       the Python 3.11 base (default python:3.11-slim)
#   TORCH_INDEX_URL  where torch/torchvision come from (PyTorch's CPU index: ~200 MB wheels instead of the
#                    multi-GB CUDA builds on PyPI); point it at a mirror or a file:// index when air-gapped
#   PIP_INDEX_URL    the index for everything else (default PyPI)
#   WEIGHTS_FILE     a checkpoint inside the build context (e.g. weights/densenet121.pth; *.pth files are
#                    only sent to the builder from weights/); unset: torchvision's IMAGENET1K_V1 download,
#                    checked against the hash prefix in its file name
ARG BASE_IMAGE=python:3.11-slim

# ---- build stage: a virtualenv with the package and its dependencies, and the weights file ----------------
FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG WEIGHTS_FILE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
# torch first, from the torch index (its +cpu builds rank above PyPI's CUDA builds of the same version).
RUN /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" --extra-index-url "$TORCH_INDEX_URL" \
        torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" --extra-index-url "$TORCH_INDEX_URL" /src
COPY weights/ /src/weights/
COPY deploy/docker/bake_weights.py /src/
RUN cd /src && /opt/venv/bin/python bake_weights.py
# Refuse to produce an image whose model does not load.
RUN /opt/venv/bin/python -c "from pathlib import Path; from densenet_server.model import load_model; \
load_model(Path('/opt/model/densenet121.pth'), open('/opt/model/densenet121.pth.sha256').read().strip())"

# ---- runtime stage: no compilers, no pip cache, no build context -------------------------------------------
FROM ${BASE_IMAGE} AS runtime
# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN useradd --system --uid 10001 --gid 0 --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/model /opt/model
WORKDIR /app
RUN mkdir -p /app/images && chown -R 10001:0 /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DENSENET_WEIGHTS=/opt/model/densenet121.pth \
    DENSENET_IMAGES_DIR=/app/images \
    DENSENET_HOST=0.0.0.0 \
    DENSENET_PORT=5000
# Served images come from a read-only mount (docker run -v "$PWD/images:/app/images:ro"), never baked in.
VOLUME ["/app/images"]
USER 10001
EXPOSE 5000
# Needs nothing but the Python already in the image; /ready answers 200 once the model has loaded.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('DENSENET_PORT', '5000'), timeout=4)"]
# Exec form: gunicorn's arbiter is PID 1 and receives SIGTERM itself (graceful stop).
ENTRYPOINT ["densenet-server", "serve"]
