# syntax=docker/dockerfile:1
# DenseNet-121 image classification server: gunicorn + Flask + ONNX Runtime, the model baked in.
# The build stage uses PyTorch (CPU) to export the model to ONNX and verify it; the runtime stage has no torch.
#
#   docker build -t densenet-server .                          # downloads the published weights at build time
#   docker build --build-arg WEIGHTS_FILE=weights/densenet121.pth -t densenet-server .   # a local checkpoint
#   docker run --rm -p 5000:5000 -v "$PWD/images:/app/images:ro" densenet-server
#
# Build arguments:
#   BASE_IMAGE       the Python 3.11 base (default python:3.11-slim)
#   TORCH_INDEX_URL  where the build stage's torch/torchvision come from (PyTorch's CPU index: ~200 MB wheels
#                    instead of the multi-GB CUDA builds on PyPI); a mirror or a file:// index when air-gapped
#   PIP_INDEX_URL    the index for everything else (default PyPI)
#   WEIGHTS_FILE     a checkpoint inside the build context (e.g. weights/densenet121.pth; *.pth files are
#                    only sent to the builder from weights/); unset: torchvision's IMAGENET1K_V1 download,
#                    checked against the hash prefix in its file name
ARG BASE_IMAGE=python:3.11-slim

# ---- build stage: export the weights to a verified ONNX model, and a torch-free virtualenv to run it --------
FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG WEIGHTS_FILE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# The exporter's environment: torch first, from the torch index (its +cpu builds rank above PyPI's CUDA builds).
RUN python -m venv /opt/exporter && /opt/exporter/bin/pip install --index-url "$PIP_INDEX_URL" \
        --extra-index-url "$TORCH_INDEX_URL" torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/exporter/bin/pip install --index-url "$PIP_INDEX_URL" --extra-index-url "$TORCH_INDEX_URL" "/src[torch]"
COPY weights/ /src/weights/
COPY deploy/docker/bake_weights.py /src/
RUN cd /src && /opt/exporter/bin/python bake_weights.py
# Export and verify against PyTorch (the export refuses to finish if probabilities differ by more than 1e-4).
RUN /opt/exporter/bin/densenet-server export --weights /opt/model/densenet121.pth \
        --weights-sha256 "$(cat /opt/model/densenet121.pth.sha256)" --output /opt/model/densenet121.onnx
# The runtime's environment: the package and ONNX Runtime, no torch (and no pip: nothing is installed at run
# time). Refuse an image whose model does not load.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" /src \
    && /opt/venv/bin/python -c "import sys; from pathlib import Path; \
from densenet_server.backends import load_backend; from densenet_server.config import Settings; \
load_backend(Settings(onnx_model=Path('/opt/model/densenet121.onnx'), threads=1)); \
assert 'torch' not in sys.modules" \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

# ---- runtime stage: the torch-free virtualenv and the ONNX model; no compilers, no pip cache, no context ----
FROM ${BASE_IMAGE} AS runtime
# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN useradd --system --uid 10001 --gid 0 --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/model/densenet121.onnx /opt/model/densenet121.onnx
WORKDIR /app
RUN mkdir -p /app/images && chown -R 10001:0 /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DENSENET_ONNX_MODEL=/opt/model/densenet121.onnx \
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
