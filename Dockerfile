# syntax=docker/dockerfile:1
# Image classification server (DenseNet-121 unless DENSENET_MODEL names another torchvision classifier):
# gunicorn + Flask, the model baked in. Two images:
#   default (target runtime): ONNX Runtime on the CPU. The build stage uses PyTorch (CPU) to export the model
#                             to ONNX and verify it; the runtime has no torch.
#   --target cuda:            PyTorch with CUDA serving on an NVIDIA GPU (DENSENET_DEVICE=cuda).
#
#   docker build -t densenet-server .                          # downloads the published weights at build time
#   docker build --build-arg WEIGHTS_FILE=weights/densenet121.pth -t densenet-server .   # a local checkpoint
#   docker build --build-arg DENSENET_MODEL=resnet50 -t densenet-server:resnet50 .     # another model
#   docker build --build-arg WEIGHTS_FILE=weights/xray.pth --build-arg LABELS_FILE=weights/xray-labels.txt \
#       -t densenet-server:xray .          # a fine-tuned DenseNet-121 with its own classes
#   docker run --rm -p 5000:5000 -e DENSENET_MULTI_LABEL=true densenet-server:xray   # ...if it is multi-label
#   docker run --rm -p 5000:5000 -v "$PWD/images:/app/images:ro" densenet-server
#   docker build --target cuda -t densenet-server:cuda .       # the GPU image (several GB: CUDA libraries)
#   docker run --rm --gpus all -p 5000:5000 -v "$PWD/images:/app/images:ro" densenet-server:cuda
#                                                   # podman: --device nvidia.com/gpu=all (CDI) for --gpus all
#
# Build arguments:
#   DENSENET_MODEL   the model: any torchvision image classifier (default densenet121); the image serves it
#                    (ENV DENSENET_MODEL), its weights are baked and, in the default image, exported for it
#   BASE_IMAGE       the Python 3.11 base of every stage (default python:3.11-slim)
#   TORCH_INDEX_URL  where the CPU build stage's torch/torchvision come from (PyTorch's CPU index: ~200 MB
#                    wheels instead of the multi-GB CUDA builds on PyPI); a mirror or a file:// index when
#                    air-gapped
#   CUDA_TORCH_INDEX_URL  where the cuda target's torch/torchvision come from (PyTorch's CUDA 13.0 index; its
#                    builds need an NVIDIA driver >= 580: point it at another CUDA index of PyTorch, e.g.
#                    .../whl/cu128, for an older driver if that index has the pinned torch)
#   PIP_INDEX_URL    the index for everything else (default PyPI)
#   WEIGHTS_FILE     a checkpoint inside the build context (e.g. weights/densenet121.pth; *.pth files are
#                    only sent to the builder from weights/), a state dict of DENSENET_MODEL with any number
#                    of classes; unset: torchvision's published weights of DENSENET_MODEL, downloaded and
#                    checked against the hash prefix in their file name
#   LABELS_FILE      the classes' names of WEIGHTS_FILE (one per line, or a JSON list; under weights/ too);
#                    the ONNX export carries them, and the cuda image serves them (DENSENET_LABELS)
#
# The default target is the last stage, and it depends on neither CUDA stage: BuildKit (docker's builder
# since 23.0) and buildah build only the stages a target needs, so the CPU image never downloads the CUDA
# wheels. Docker's legacy builder (DOCKER_BUILDKIT=0) builds every stage before the target: avoid it here.
ARG BASE_IMAGE=python:3.11-slim
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG WEIGHTS_FILE=
ARG LABELS_FILE=
ARG DENSENET_MODEL=densenet121

# ---- build stage: export the weights to a verified ONNX model, and a torch-free virtualenv to run it --------
FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL
ARG WEIGHTS_FILE
ARG LABELS_FILE
ARG DENSENET_MODEL
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
# Export and verify against PyTorch (the export refuses to finish if probabilities differ by more than 1e-4);
# the file carries the model's record (architecture, preprocessing, the labels' names).
RUN /opt/exporter/bin/densenet-server export --model "$DENSENET_MODEL" --weights /opt/model/model.pth \
        --weights-sha256 "$(cat /opt/model/model.pth.sha256)" ${LABELS_FILE:+--labels /opt/model/labels.txt} \
        --output /opt/model/model.onnx
# The runtime's environment: the package and ONNX Runtime, no torch (and no pip: nothing is installed at run
# time). Refuse an image whose model does not load.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" /src \
    && /opt/venv/bin/python -c "import sys; from pathlib import Path; \
from densenet_server.backends import load_backend; from densenet_server.config import Settings; \
load_backend(Settings(onnx_model=Path('/opt/model/model.onnx'), model='$DENSENET_MODEL', threads=1)); \
assert 'torch' not in sys.modules" \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

# ---- cuda-build stage: a virtualenv with PyTorch for CUDA and the package, and the baked weights ------------
# No CUDA base image is needed: PyTorch's CUDA wheels bring the CUDA runtime, cuDNN, cuBLAS... as pip
# packages (nvidia-*) and torchvision's bundles nvJPEG, so a slim Python base works; only the driver comes
# from the host (--gpus / CDI). Nothing here compiles at run time (CUDA graphs, no torch.compile): no gcc.
FROM ${BASE_IMAGE} AS cuda-build
ARG CUDA_TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
ARG PIP_INDEX_URL
ARG WEIGHTS_FILE
ARG LABELS_FILE
ARG DENSENET_MODEL
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# torch first and pinned, from the CUDA index (its +cuXXX builds rank above PyPI's), so installing the
# package's torch extra next keeps it instead of resolving another build.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" \
        --extra-index-url "$CUDA_TORCH_INDEX_URL" torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" --extra-index-url "$CUDA_TORCH_INDEX_URL" "/src[torch]"
COPY weights/ /src/weights/
COPY deploy/docker/bake_weights.py /src/
RUN cd /src && /opt/venv/bin/python bake_weights.py
# The builder has no GPU: refuse a torch without CUDA, and prove the weights load with the torch backend on
# the CPU (the device is chosen at run time).
RUN /opt/venv/bin/python -c "import torch; from pathlib import Path; \
from densenet_server.backends import load_backend; from densenet_server.config import Settings; \
assert torch.version.cuda, 'torch %s is not a CUDA build' % torch.__version__; \
labels = Path('/opt/model/labels.txt'); \
load_backend(Settings(model='$DENSENET_MODEL', weights=Path('/opt/model/model.pth'), backend='torch', threads=1, \
labels=labels if labels.is_file() else None, \
weights_sha256=Path('/opt/model/model.pth.sha256').read_text().strip()))" \
    && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

# ---- serving: what both images share (user, folders, environment, healthcheck, entrypoint) ------------------
FROM ${BASE_IMAGE} AS serving
ARG DENSENET_MODEL
# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN useradd --system --uid 10001 --gid 0 --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
RUN mkdir -p /app/images && chown -R 10001:0 /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DENSENET_MODEL=${DENSENET_MODEL} \
    DENSENET_IMAGES_DIR=/app/images \
    DENSENET_HOST=0.0.0.0 \
    DENSENET_PORT=5000 \
    DENSENET_GRPC_PORT=8081
# Served images come from a read-only mount (docker run -v "$PWD/images:/app/images:ro"), never baked in.
VOLUME ["/app/images"]
USER 10001
# HTTP, and the Open Inference Protocol v2 over gRPC.
EXPOSE 5000 8081
# Needs nothing but the Python already in the image; /ready answers 200 once the model has loaded.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "densenet_server.healthcheck"]
# Exec form: gunicorn's arbiter is PID 1 and receives SIGTERM itself (graceful stop).
ENTRYPOINT ["densenet-server", "serve"]

# ---- cuda target: PyTorch with CUDA and the .pth weights; run it with a GPU (--gpus all / CDI) --------------
FROM serving AS cuda
ARG LABELS_FILE
COPY --from=cuda-build /opt/venv /opt/venv
# The weights, their SHA-256 and, with LABELS_FILE, labels.txt.
COPY --from=cuda-build /opt/model /opt/model
# DENSENET_DEVICE=cuda (which selects the torch backend), not auto: started without a GPU the server must
# fail at start-up and say so, rather than serve slowly on the CPU. The NVIDIA runtime reads
# NVIDIA_DRIVER_CAPABILITIES to mount the driver's compute libraries (and nvidia-smi); which GPUs are
# visible stays the orchestrator's choice (no NVIDIA_VISIBLE_DEVICES here). DENSENET_LABELS is empty, i.e.
# unset, unless LABELS_FILE was given.
ENV DENSENET_WEIGHTS=/opt/model/model.pth \
    DENSENET_LABELS=${LABELS_FILE:+/opt/model/labels.txt} \
    DENSENET_DEVICE=cuda \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ---- runtime stage (the default target): the torch-free virtualenv and the ONNX model; no compilers, no pip
# cache, no context ----------------------------------------------------------------------------------------
FROM serving AS runtime
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/model/model.onnx /opt/model/model.onnx
ENV DENSENET_ONNX_MODEL=/opt/model/model.onnx
