"""A closed-loop gRPC load generator for the benchmark: tritonclient.grpc's asyncio client, the way a Triton
or KServe user sends ModelInfer, on one event loop in this process (as loadgen.py drives HTTP).

``concurrency`` clients each send one request, wait for its answer and send the next, for ``duration_s``
seconds, over one channel (gRPC multiplexes its calls on one HTTP/2 connection). Answers are counted by
status in a loadgen.LoadResult, so the benchmark's table treats both transports alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput
from tritonclient.utils import InferenceServerException

from ..routes.v2_tensors import IMAGE_INPUT
from .loadgen import GRPC_OK, TIMEOUT, LoadResult, run_closed_loop


def image_input(images: Sequence[bytes]) -> InferInput:
    """Encoded images as the `image` input of one ModelInfer request (raw BYTES contents)."""
    tensor = InferInput(IMAGE_INPUT, [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    return tensor


async def _client_loop(
    client: triton_aio.InferenceServerClient,
    model: str,
    requests: Sequence[tuple[InferInput, int]],
    counter: list[int],
    deadline: float,
    timeout_s: float,
    result: LoadResult,
) -> None:
    while time.monotonic() < deadline:
        tensor, images = requests[counter[0] % len(requests)]
        counter[0] += 1
        started = time.perf_counter()
        try:
            await client.infer(model, [tensor], client_timeout=timeout_s)
        except InferenceServerException as exc:
            status = str(exc.status() or TIMEOUT)  # e.g. "StatusCode.UNAVAILABLE"
        else:
            status = GRPC_OK
            result.latencies_s.append(time.perf_counter() - started)
            result.images_ok += images
        result.statuses[status] += 1


async def run_grpc_load_async(
    address: str, model: str, batches: Sequence[Sequence[bytes]], concurrency: int, duration_s: float, timeout_s: float = 60.0
) -> LoadResult:
    result = LoadResult(concurrency)
    requests = [(image_input(images), len(images)) for images in batches]
    async with triton_aio.InferenceServerClient(address) as client:
        counter = [0]
        return await run_closed_loop(
            concurrency, duration_s, result,
            lambda deadline: _client_loop(client, model, requests, counter, deadline, timeout_s, result),
        )


def run_grpc_load(
    address: str, model: str, batches: Sequence[Sequence[bytes]], concurrency: int, duration_s: float
) -> LoadResult:
    """Drive ``model`` at ``address`` ("host:port") with ``concurrency`` closed-loop clients sending
    ``batches`` in turn (each one ModelInfer of its images) for ``duration_s`` seconds."""
    return asyncio.run(run_grpc_load_async(address, model, batches, concurrency, duration_s))
