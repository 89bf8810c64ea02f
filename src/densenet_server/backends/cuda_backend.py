"""The GPU backend: the torchvision module run by PyTorch on a CUDA device, from CUDA graphs.

At small batches an eager forward pass of a CNN on a GPU is nearly all Python launch overhead (issue 9,
DenseNet-121 on an H100: 10.7 ms at batch 1 eager, 2.1 ms replaying a CUDA graph). So warm_up() captures one
CUDA graph per batch-size bucket (buckets.py), largest first, all in one memory pool, and predict() replays the
smallest graph that holds the batch: the batch is copied through pinned host memory into a static input
buffer, zero rows pad it to the bucket, and the padding rows' logits are dropped. Each row's logits depend
on that row only (BatchNorm runs on its stored statistics, and torchvision's classifiers mix no rows), so
padding changes no answer.

The model runs channels_last in the chosen precision (fp32; tf32: fp32 tensors with TF32 tensor-core maths;
fp16; bf16), wrapped as cuda_modules.py chooses from its structure (a DenseNet's head stays in fp32). Its
input and output sizes are the served record's (the crop, the class count), given by the caller.

Written for PyTorch >= 2.4 (torch.cuda.graph with a shared pool, the allow_tf32 flags). Device "cpu" is
accepted so that the whole pipeline (buckets, padding, precisions) is tested on machines without a GPU;
graphs and pinned memory need CUDA.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import BF16, FP16, FP32, TF32
from .buckets import bucket_sizes, plan_chunks
from .cuda_modules import served_module
from .registry import TORCH

log = logging.getLogger(__name__)

COMPUTE_DTYPES = {FP32: torch.float32, TF32: torch.float32, FP16: torch.float16, BF16: torch.bfloat16}
# Eager passes per bucket before its capture: cudnn.benchmark picks its algorithms for the shape on the first,
# and the caching allocator settles, so that the capture records neither.
PASSES_BEFORE_CAPTURE = 3


@contextlib.contextmanager
def math_mode(tf32: bool) -> Iterator[None]:
    """TF32 on or off for convolutions and matmuls, cuDNN autotuning on; restored afterwards.

    PyTorch enables TF32 for cuDNN convolutions by default, so fp32 must switch it off to be fp32. These are
    process-wide flags: set around each eager pass and capture (a graph keeps the kernels it recorded).
    The allow_tf32 flags exist in every PyTorch >= 2.4 (newer ones also offer fp32_precision).
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark)
    cudnn.allow_tf32 = matmul.allow_tf32 = tf32
    cudnn.benchmark = True
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark = saved


def pad_into(static: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Copy ``rows`` into the first rows of ``static`` (asynchronously from pinned memory) and zero the rest."""
    count = rows.shape[0]
    if count > static.shape[0]:
        raise ValueError(f"{count} rows do not fit a buffer of {static.shape[0]}")
    static[:count].copy_(rows, non_blocking=True)
    static[count:].zero_()
    return static


def unpadded(logits: torch.Tensor, rows: int) -> torch.Tensor:
    """The logits of the real rows of a padded pass: the padding rows come last."""
    return logits[:rows]


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    output: torch.Tensor  # written by every replay


class CudaBackend:
    name = TORCH.name
    # One pass at a time: the graphs share their input buffer and memory pool.
    lane_predicts = ()

    def __init__(
        self,
        module: nn.Module,
        device: str,
        precision: str,
        max_batch_size: int,
        input_shape: tuple[int, int, int],
        classes: int,
        use_graphs: bool = True,
    ) -> None:
        """``input_shape``: one image's float32 pixels [3, crop, crop]; ``classes``: the module's logits per
        image (both the served record's)."""
        if precision not in COMPUTE_DTYPES:
            raise ValueError(f"the CUDA backend runs in {', '.join(COMPUTE_DTYPES)}, not {precision}")
        self._device = torch.device(device)
        self._cuda = self._device.type == "cuda"
        if self._cuda and self._device.index is None:
            # "cuda" alone: pin the current device, so that every thread later uses the same one.
            self._device = torch.device("cuda", torch.cuda.current_device())
        self.device = str(self._device)
        self.precision = precision
        self.buckets = bucket_sizes(max_batch_size)
        self.use_graphs = use_graphs and self._cuda
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self._model = served_module(module, COMPUTE_DTYPES[precision]).to(self._device).eval()
        largest = self.buckets[-1]
        # Pinned host buffers: copies to and from the GPU are DMA transfers that need no staging copy and
        # let non_blocking copies be queued on the stream without waiting for the host.
        self._host_in = torch.empty((largest, *self.input_shape), dtype=torch.float32, pin_memory=self._cuda)
        self._host_out = torch.empty((largest, classes), dtype=torch.float32, pin_memory=self._cuda)
        # One input buffer for every bucket (bucket b reads its first b rows), as the graphs need fixed addresses.
        self._static_in = torch.zeros((largest, *self.input_shape), dtype=torch.float32, device=self._device)
        self._graphs: dict[int, _Graph] = {}
        self._lock = threading.Lock()
        self.warm_up_seconds: float | None = None

    @property
    def captured_buckets(self) -> tuple[int, ...]:
        return tuple(sorted(self._graphs))

    def _on_device(self) -> contextlib.AbstractContextManager[object]:
        # Streams, events and graph replays belong to the current device: any thread may call predict.
        return torch.cuda.device(self._device) if self._cuda else contextlib.nullcontext()

    def _eager(self, static: torch.Tensor) -> torch.Tensor:
        with math_mode(tf32=self.precision == TF32):
            return self._model(static)

    def warm_up(self) -> float:
        """Capture a CUDA graph per bucket (or, without graphs, one eager pass per bucket so that cuDNN has
        chosen its algorithms); returns and logs the seconds it took. Call before serving."""
        started = time.perf_counter()
        with self._lock, self._on_device(), torch.inference_mode():
            if self.use_graphs:
                pool = torch.cuda.graph_pool_handle()
                # Largest first: the smaller graphs then fit in the memory the larger one left in the pool.
                for bucket in reversed(self.buckets):
                    self._graphs[bucket] = self._capture(self._static_in[:bucket], pool)
                torch.cuda.synchronize(self._device)
                # The eager passes before each capture left blocks in the allocator's cache; the graphs keep theirs.
                torch.cuda.empty_cache()
            else:
                for bucket in self.buckets:
                    self._eager(self._static_in[:bucket])
        self.warm_up_seconds = time.perf_counter() - started
        self._log_warm_up()
        return self.warm_up_seconds

    def _capture(self, static: torch.Tensor, pool: object) -> _Graph:
        side = torch.cuda.Stream(self._device)
        side.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side):
            for _ in range(PASSES_BEFORE_CAPTURE):
                self._eager(static)
        torch.cuda.current_stream(self._device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            output = self._eager(static)
        return _Graph(graph, output)

    def _log_warm_up(self) -> None:
        what = f"CUDA graphs captured for batch buckets {list(self.captured_buckets)}" if self.use_graphs else (
            f"eager passes for batch buckets {list(self.buckets)} (graphs off)"
        )
        memory = ""
        if self._cuda:
            allocated = torch.cuda.memory_allocated(self._device) / 2**20
            reserved = torch.cuda.memory_reserved(self._device) / 2**20
            memory = f"; GPU memory {allocated:.0f} MiB allocated, {reserved:.0f} MiB reserved"
        log.info("warm-up on %s (%s): %s in %.1f s%s", self.device, self.precision, what, self.warm_up_seconds, memory)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self._check_shape(tuple(batch.shape))
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self._predict_rows(batch.shape[0], lambda start, stop: self._staged(batch[start:stop]))

    def predict_tensor(self, pixels: torch.Tensor) -> np.ndarray:
        """Like predict, for float32 pixels already on this device (gpu_decode.decode_batch): no host round trip."""
        self._check_shape(tuple(pixels.shape))
        if pixels.device != self._device or pixels.dtype != torch.float32:
            raise ValueError(f"expected float32 pixels on {self.device}, got {pixels.dtype} on {pixels.device}")
        return self._predict_rows(pixels.shape[0], lambda start, stop: pixels[start:stop])

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 4 or shape[1:] != self.input_shape or shape[0] < 1:
            expected = ", ".join(map(str, self.input_shape))
            raise ValueError(f"expected a float32 [N, {expected}] batch, got shape {shape}")

    def _predict_rows(self, count: int, rows: Callable[[int, int], torch.Tensor]) -> np.ndarray:
        logits = np.empty((count, self.classes), dtype=np.float32)
        with torch.inference_mode(), self._lock, self._on_device():
            for chunk in plan_chunks(count, self.buckets):
                logits[chunk.start : chunk.stop] = self._run(rows(chunk.start, chunk.stop), chunk.bucket)
        return logits

    def _staged(self, rows: np.ndarray) -> torch.Tensor:
        # Into pinned memory, from which the copy to the device is asynchronous (called under the lock).
        host = self._host_in[: rows.shape[0]]
        np.copyto(host.numpy(), rows)
        return host

    def _run(self, rows: torch.Tensor, bucket: int) -> np.ndarray:
        count = rows.shape[0]
        static = pad_into(self._static_in[:bucket], rows)
        captured = self._graphs.get(bucket)
        if captured is not None:
            captured.graph.replay()
            output = captured.output
        else:
            output = self._eager(static)
        host_out = self._host_out[:count]
        host_out.copy_(unpadded(output, count), non_blocking=True)
        if self._cuda:
            # The copies and the pass are queued on this stream; the host buffers are reused by the next call.
            torch.cuda.current_stream(self._device).synchronize()
        return host_out.numpy()
