"""Every setting of the server in one typed place.

Each setting has a documented default, an environment variable ``DENSENET_<NAME>`` and a command-line
flag ``--<name>``; a flag wins over the environment, which wins over the default. The README's
configuration table is generated from the same declarations (``densenet-server config``), so the
documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import device as devices
from . import precision as precisions
from .backends import registry
from .cpus import usable_cpus
from .model_record import DEFAULT_MODEL, DEFAULT_THRESHOLD

ENV_PREFIX = "DENSENET_"

# Groups decide which sub-commands accept a setting: every command builds a model, only `serve` runs HTTP.
MODEL = "model"
SERVER = "server"
BATCHING = "batching"
LIMITS = "limits"

AUTO = "auto"
# onnxruntime on a CPU is as fast per image at batch 2-4 as at 8 or 16 (docs/performance.md).
CPU_MAX_BATCH_SIZE = 4
MIN_AUTO_QUEUE_IMAGES = 64
BACKENDS = (AUTO, *registry.NAMES)
PRECISIONS = precisions.PRECISIONS  # auto, fp32, tf32, fp16, bf16


def _setting(default: Any, help: str, group: str) -> Any:
    return field(default=default, metadata={"help": help, "group": group})


@dataclass(frozen=True)
class Settings:
    # model
    model: str = _setting(
        DEFAULT_MODEL,
        "The model: any torchvision image classifier (densenet121, resnet50, efficientnet_b0, convnext_tiny, "
        "vit_b_16, ...). Its preprocessing, categories and published weights come from torchvision's weights "
        "metadata (DenseNet-121's are built in, so it needs no torchvision with onnxruntime).",
        MODEL,
    )
    model_name: str | None = _setting(
        None,
        "The name the model is served under (answers' `model`, /v2/models/<name>, ?model=); unset: --model.",
        MODEL,
    )
    weights: Path | None = _setting(
        None,
        "Local state dict of --model (torchvision keys; DenseNet's legacy 'norm.1' keys too), with any number "
        "of classes (read from its last layer). Unset: torchvision's published weights for --model, "
        "downloaded and hash-checked.",
        MODEL,
    )
    labels: Path | None = _setting(
        None,
        "The classes' names for --weights: one per line, or a JSON list; as many as the model has outputs "
        "(unset: the published categories if the count matches them, else class_0, class_1, ...).",
        MODEL,
    )
    multi_label: bool = _setting(
        False,
        "Multi-label outputs: a sigmoid per class instead of one softmax; answers add every class at or above "
        "--threshold.",
        MODEL,
    )
    threshold: float = _setting(
        DEFAULT_THRESHOLD, "With --multi-label: the probability from which a class is in an answer's labels.", MODEL
    )
    models_file: Path | None = _setting(
        None,
        "Serve several models: a TOML file with one [models.<name>] table per model (its model, weights, "
        "labels, multi_label, threshold, batching and backend settings; README, 'Several models'). The first "
        "is the default. Replaces the model flags above.",
        MODEL,
    )
    weights_sha256: str | None = _setting(
        None, "Expected SHA-256 of --weights; start-up fails on a mismatch.", MODEL
    )
    threads: int = _setting(
        0,
        "Threads for inference (0: one per usable CPU: the cgroup quota and affinity, not the host's "
        "count): a forward pass that runs alone uses all of them, parallel passes (--parallel-passes) "
        "share them.",
        MODEL,
    )
    parallel_passes: int = _setting(
        0,
        "onnxruntime: forward passes that may run at once under load, each on --threads / N threads; a "
        "pass that runs alone uses all --threads (0: one per inference thread, i.e. single-threaded "
        "passes under load, the fastest layout measured on 2 and 16 cores; see docs/architecture.md).",
        MODEL,
    )
    backend: str = _setting(
        AUTO,
        "Forward pass: onnxruntime (an ONNX export of the model, verified against PyTorch), torch (the "
        "reference), or auto (CPU: onnxruntime for fp32, torch for bf16; CUDA: torch).",
        MODEL,
    )
    precision: str = _setting(
        AUTO,
        "auto (CPU: fp32; CUDA: fp16 for DenseNets, whose agreement was measured, else fp32), fp32, or opt-in bf16 (torch backend; faster on CPUs with AVX-512 BF16, "
        "probabilities move by up to ~0.09, see docs/performance.md); tf32 and fp16 on CUDA only. Reported in "
        "every answer.",
        MODEL,
    )
    device: str = _setting(
        AUTO,
        "auto (CUDA when PyTorch sees a GPU, else the CPU), cpu, cuda or cuda:N. Asking for CUDA where there is "
        "none is an error, never a fallback to the CPU.",
        MODEL,
    )
    onnx_model: Path | None = _setting(
        None,
        "An ONNX file made by `densenet-server export`, served by onnxruntime without PyTorch "
        "(instead of --weights).",
        MODEL,
    )
    cache_dir: Path | None = _setting(
        None,
        "Where ONNX exports are cached, keyed by the weights' hash (unset: $XDG_CACHE_HOME/densenet-server, "
        "else ~/.cache/densenet-server).",
        MODEL,
    )
    jpeg_draft: bool = _setting(
        False,
        "Fast path for large JPEGs: decode at 1/2, 1/4 or 1/8 scale when the image stays above 256 "
        "pixels a side. Probabilities move slightly (docs/performance.md).",
        MODEL,
    )
    # server
    host: str = _setting("0.0.0.0", "Address to listen on.", SERVER)
    port: int = _setting(5000, "TCP port to listen on.", SERVER)
    grpc_port: int = _setting(
        8081,
        "TCP port of the Open Inference Protocol v2 over gRPC (KServe's and Triton's "
        "inference.GRPCInferenceService), on --host; every front serves it. 0 turns gRPC off.",
        SERVER,
    )
    images_dir: Path = _setting(
        Path("images"), "Folder served by GET /inference/<filename>.", SERVER
    )
    workers: int = _setting(
        0,
        "HTTP front processes (gunicorn workers); they parse requests and decode images, and share the one "
        "engine process that runs the model (0: 1 below 8 CPUs, else CPUs / 8 up to 4; on CUDA one per CPU "
        "but two, decoding must keep up with the GPU; see docs/architecture.md).",
        SERVER,
    )
    http_threads: int = _setting(
        96,
        "Request threads of each front process; they decode and resize in parallel with inference. Keep "
        "workers x threads above the queue plus a batch, so that overload fills the inference queue "
        "(and is refused with 503) rather than waiting for a free thread.",
        SERVER,
    )
    resize_strips: int = _setting(
        0,
        "An image resized while its front decodes nothing else and no image waits for the engine (a lone "
        "request) is resized in up to this many strips at once, on otherwise idle CPUs, with the same "
        "pixels as one resize; 1 never splits (0: one per usable CPU; docs/performance.md).",
        SERVER,
    )
    log_level: str = _setting("info", "Log level (debug, info, warning, error).", SERVER)
    access_log: str = _setting(
        "-",
        "JSON access log, one line per request: '-' for standard output, a file to append to, or 'off'.",
        SERVER,
    )
    shutdown_grace_s: int = _setting(
        25,
        "On SIGTERM: stop accepting connections, answer /ready with 503, finish the accepted requests "
        "for at most this long, then exit. At least --request-timeout-s, and below the orchestrator's "
        "kill timeout (Kubernetes: terminationGracePeriodSeconds, 30 s by default).",
        SERVER,
    )
    api_keys_file: Path | None = _setting(
        None,
        "A file of API keys, one per line (at least 16 characters; '#' starts a comment). With it, inference, "
        "metadata, /docs, /openapi.json and /metrics need 'Authorization: Bearer <key>' (else 401); /, "
        "/ready, /v2/health/* and the /ui page stay open. Re-read on SIGHUP. A key itself never goes on the "
        "command line.",
        SERVER,
    )
    metrics_open: bool = _setting(
        False, "With --api-keys-file: /metrics answers without a key (for a scraper that sends none).", SERVER
    )
    certfile: Path | None = _setting(
        None,
        "TLS: the server's certificate (PEM, its chain after it); with --keyfile the server speaks HTTPS "
        "only. Unset: plain HTTP (terminate TLS at an ingress or load balancer instead).",
        SERVER,
    )
    keyfile: Path | None = _setting(None, "TLS: the private key (PEM) of --certfile.", SERVER)
    # batching
    max_batch_size: int = _setting(
        0,
        "Most images in one forward pass (counts images, not requests; a request with more runs alone, in "
        "passes of this many). 0: 4 on the CPU (onnxruntime is as "
        "fast per image at 2-4 as at 8 or 16, and its memory arena grows with the batch; "
        "docs/performance.md), 128 on CUDA.",
        BATCHING,
    )
    max_batch_wait_ms: float = _setting(
        5.0,
        "Longest a batch waits for more images, counted from its first image's arrival.",
        BATCHING,
    )
    max_queue_images: int = _setting(
        0,
        "Images that may wait for inference; beyond it requests get 503 with Retry-After (0: two batches "
        "per parallel pass, at least 64).",
        BATCHING,
    )
    request_timeout_s: float = _setting(
        20.0,
        "Deadline for one request, from when a request thread takes it up: decoding, queueing and "
        "inference; past it the answer is 504.",
        BATCHING,
    )
    # limits
    max_body_bytes: int = _setting(
        20 * 1024 * 1024, "Largest accepted request body in bytes (larger: 413).", LIMITS
    )
    max_image_pixels: int = _setting(
        40_000_000, "Largest decoded image in pixels (width x height; larger: 413).", LIMITS
    )
    max_images_per_request: int = _setting(
        16,
        "Most images in one POST /inference or v2 infer request (more: 400); at most --max-queue-images.",
        LIMITS,
    )
    max_decoding_pixels: int = _setting(
        80_000_000,
        "Pixels being decoded at once, summed over all requests: bounds decoding memory (4-7 bytes a "
        "pixel). An image waits for room until its request's deadline (then 504). At least "
        "--max-image-pixels.",
        LIMITS,
    )

    def served_name(self) -> str:
        """The name the model is served under: --model-name, else --model."""
        return self.model_name or self.model

    def effective_threads(self) -> int:
        # The CPUs this process may use (cgroup quota, affinity), not the host's: a container limited to
        # 2 CPUs on a 64-core host must not start 64 threads.
        return self.threads if self.threads > 0 else usable_cpus().count

    def effective_resize_strips(self) -> int:
        return self.resize_strips if self.resize_strips > 0 else usable_cpus().count

    def effective_parallel_passes(self) -> int:
        if self.parallel_passes > 0:
            return self.parallel_passes
        # Single-threaded passes under load: on 2 cores two 1-thread passes beat one 2-thread pass
        # (docs/performance.md), and on 16 cores 16 one-thread engines beat every layout with fewer,
        # wider ones (issue 10's figures, docs/architecture.md).
        return self.effective_threads()

    def on_cuda(self) -> bool:
        return devices.is_cuda(self.device)

    def effective_max_batch_size(self) -> int:
        if self.max_batch_size > 0:
            return self.max_batch_size
        return devices.CUDA_MAX_BATCH_SIZE if self.on_cuda() else CPU_MAX_BATCH_SIZE

    def effective_max_queue_images(self) -> int:
        if self.max_queue_images > 0:
            return self.max_queue_images
        # Enough to keep every parallel pass busy for two batches, so a burst is queued, not refused.
        passes = 1 if self.on_cuda() else self.effective_parallel_passes()
        return max(MIN_AUTO_QUEUE_IMAGES, 2 * passes * self.effective_max_batch_size(), self.max_images_per_request)

    def effective_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "densenet-server"


def _fields(groups: Iterable[str] | None = None) -> list[dataclasses.Field[Any]]:
    wanted = set(groups) if groups is not None else None
    return [
        f
        for f in dataclasses.fields(Settings)
        if wanted is None or f.metadata["group"] in wanted
    ]


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _value_type(f: dataclasses.Field[Any]) -> type:
    annotation = str(f.type)
    for name, kind in (("Path", Path), ("int", int), ("float", float), ("bool", bool)):
        if annotation.startswith(name):
            return kind
    return str


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = _value_type(f)
    if raw == "" and "None" in str(f.type):
        return None
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{env_name(f.name)}: expected a boolean, got {raw!r}")
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{f.name}: cannot read {raw!r} as {kind.__name__}") from exc


def add_arguments(parser: argparse.ArgumentParser, groups: Iterable[str]) -> None:
    """Add one flag per setting of the given groups; unset flags stay None so env vars can apply."""
    for f in _fields(groups):
        kind = _value_type(f)
        help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {f.default}]"
        if kind is bool:
            # --jpeg-draft / --no-jpeg-draft, so a flag can also switch off what the environment switched on.
            parser.add_argument(
                flag_name(f.name), dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=help_text
            )
            continue
        parser.add_argument(
            flag_name(f.name),
            dest=f.name,
            default=None,
            type=(lambda raw, f=f: _parse(f, raw)),
            metavar=kind.__name__.upper() if kind is not Path else "PATH",
            help=help_text,
        )


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, overridden by DENSENET_* environment variables, overridden by explicit flags.

    With a models file, the per-model settings come from its tables: a per-model flag beside it is an
    error, and a per-model environment variable (a container image's DENSENET_MODEL, say) is ignored."""
    environ = os.environ if environ is None else environ
    flags = flags or {}
    values: dict[str, Any] = {}
    for f in _fields():
        if flags.get(f.name) is not None:
            values[f.name] = flags[f.name]
        elif env_name(f.name) in environ:
            values[f.name] = _parse(f, environ[env_name(f.name)])
    if values.get("models_file") is not None:
        clashing = [name for name in PER_MODEL_FLAGS if flags.get(name) is not None]
        if clashing:
            raise ValueError(
                "invalid configuration: with models_file, give "
                f"{', '.join(clashing)} in the models file, per model"
            )
        values = {name: value for name, value in values.items() if name not in PER_MODEL_FLAGS}
    settings = Settings(**values)
    validate(settings)
    return settings


# Settings that describe one model: with --models-file each model's table gives them.
PER_MODEL_FLAGS = ("model", "model_name", "weights", "weights_sha256", "labels", "multi_label", "threshold", "onnx_model")


def validate(settings: Settings) -> None:
    problems = []
    if not 0 < settings.port < 65536:
        problems.append("port must be between 1 and 65535")
    if not 0 <= settings.grpc_port < 65536:
        problems.append("grpc_port must be between 0 (off) and 65535")
    elif settings.grpc_port == settings.port:
        problems.append("grpc_port must differ from port (0 turns gRPC off)")
    for name in (
        "http_threads", "max_body_bytes", "max_image_pixels",
        "max_images_per_request", "max_decoding_pixels",
    ):
        if getattr(settings, name) < 1:
            problems.append(f"{name} must be at least 1")
    if settings.max_batch_wait_ms < 0 or settings.request_timeout_s <= 0:
        problems.append("max_batch_wait_ms must be >= 0 and request_timeout_s > 0")
    for name in ("workers", "max_batch_size", "max_queue_images", "resize_strips"):
        if getattr(settings, name) < 0:
            problems.append(f"{name} must be 0 (automatic) or more")
    if 0 < settings.max_queue_images < settings.max_batch_size:
        problems.append("max_queue_images must be at least max_batch_size")
    if 0 < settings.max_queue_images < settings.max_images_per_request:
        problems.append("max_images_per_request must be at most max_queue_images")
    if settings.max_decoding_pixels < settings.max_image_pixels:
        problems.append("max_decoding_pixels must be at least max_image_pixels")
    if settings.shutdown_grace_s < 1:
        problems.append("shutdown_grace_s must be at least 1")
    if settings.shutdown_grace_s < settings.request_timeout_s:
        problems.append("shutdown_grace_s must be at least request_timeout_s, so accepted requests can finish")
    if settings.access_log == "":
        problems.append("access_log must be '-', a file path, or 'off'")
    if (settings.certfile is None) != (settings.keyfile is None):
        problems.append("give both certfile and keyfile (TLS), or neither")
    if settings.parallel_passes < 0:
        problems.append("parallel_passes must be 0 (automatic) or more")
    if settings.backend not in BACKENDS:
        problems.append(f"backend must be one of {', '.join(BACKENDS)}")
    if settings.precision not in PRECISIONS:
        problems.append(f"precision must be one of {', '.join(PRECISIONS)}")
    if not devices.is_valid_setting(settings.device):
        problems.append("device must be auto, cpu, cuda or cuda:N")
    elif settings.precision in PRECISIONS and settings.backend in BACKENDS:
        problems += precisions.combination_problems(
            devices.device_kind(settings.device), settings.backend, settings.precision, settings.onnx_model is not None
        )
    if settings.onnx_model is not None and settings.weights is not None:
        problems.append("give either weights or onnx_model: an ONNX export already holds its weights")
    if settings.onnx_model is not None and settings.backend == registry.TORCH.name:
        problems.append("onnx_model is served by the onnxruntime backend in fp32")
    if not 0.0 < settings.threshold < 1.0:
        problems.append("threshold must be between 0 and 1")
    if settings.models_file is not None:
        per_model = [name for name in PER_MODEL_FLAGS if getattr(settings, name) != Settings.__dataclass_fields__[name].default]
        if per_model:
            problems.append(f"with models_file, give {', '.join(per_model)} in the models file, per model")
    if problems:
        raise ValueError("invalid configuration: " + "; ".join(problems))


def markdown_table() -> str:
    """The README's configuration table, generated from the declarations above."""
    rows = ["| flag | environment variable | default | meaning |", "| --- | --- | --- | --- |"]
    for f in _fields():
        default = "(published weights)" if f.name == "weights" else f.default
        rows.append(
            f"| `{flag_name(f.name)}` | `{env_name(f.name)}` | `{default}` | {f.metadata['help']} |"
        )
    return "\n".join(rows)
