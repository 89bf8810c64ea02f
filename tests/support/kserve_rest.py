"""KServe's own REST client (kserve.InferenceRESTClient, kserve 0.21) against the server, run in a child
process.

Why a child: kserve's generated protobuf module and tritonclient.grpc's both define the protobuf package
`inference` in protobuf's default descriptor pool, so one process cannot import both ("duplicate symbol
'inference.ServerLiveRequest'"), and the gRPC tests import tritonclient.grpc. The functions below run in
a spawned child that imports kserve (and never tritonclient.grpc); their arguments and results are plain
data and numpy arrays, pickled across. The client is asynchronous (httpx): each call runs its own loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
CALL_TIMEOUT_S = 120.0


class KServeChild:
    """One spawned process that runs the functions of this module; use as a context manager."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._pool.submit(function, *args, **kwargs).result(timeout=CALL_TIMEOUT_S)

    def __enter__(self) -> KServeChild:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class Connection:
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str = True  # a CA file for a self-signed certificate


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    data: np.ndarray


@dataclass(frozen=True)
class InferAnswer:
    id: str
    model_name: str
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class StatusError:
    """What the client raised for an answer other than 2xx (httpx.HTTPStatusError)."""

    status: int
    message: str


def _client(connection: Connection) -> Any:
    from kserve import InferenceRESTClient, RESTConfig

    return InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=CALL_TIMEOUT_S, verify=connection.verify))


def _run(coroutine: Callable[[Any], Any], connection: Connection) -> Any:
    import httpx

    async def main() -> Any:
        async with _client(connection) as client:
            try:
                return await coroutine(client)
            except httpx.HTTPStatusError as exc:
                return StatusError(exc.response.status_code, str(exc))

    return asyncio.run(main())


def health(connection: Connection, model: str) -> dict[str, Any]:
    """The client's three health calls: server live, server ready, ``model`` ready."""
    headers = dict(connection.headers)

    async def calls(client: Any) -> dict[str, Any]:
        return {
            "live": await client.is_server_live(connection.base_url, headers=headers),
            "ready": await client.is_server_ready(connection.base_url, headers=headers),
            "model_ready": await client.is_model_ready(connection.base_url, model, headers=headers),
        }

    return _run(calls, connection)  # type: ignore[no-any-return]


def infer(
    connection: Connection,
    model: str,
    inputs: Sequence[Tensor],
    binary: bool,
    outputs: Sequence[tuple[str, dict[str, Any]]] = (),
    request_id: str | None = None,
) -> InferAnswer | StatusError:
    """One inference as the client's users write it (InferInput, InferRequest, RequestedOutput): tensors in
    the JSON or, with ``binary``, as binary data after it (with binary outputs asked for too)."""
    from kserve import InferInput, InferRequest
    from kserve.protocol.infer_type import RequestedOutput

    infer_inputs = []
    for tensor in inputs:
        each = InferInput(tensor.name, list(tensor.data.shape), tensor.datatype)
        each.set_data_from_numpy(tensor.data, binary_data=binary)
        infer_inputs.append(each)
    requested = [RequestedOutput(name, {**parameters, "binary_data": binary}) for name, parameters in outputs]
    request = InferRequest(model, infer_inputs, request_id=request_id, request_outputs=requested or None)

    async def call(client: Any) -> InferAnswer:
        answer = await client.infer(connection.base_url, request, model_name=model, headers=dict(connection.headers))
        return InferAnswer(answer.id, answer.model_name, {output.name: output.as_numpy() for output in answer.outputs})

    return _run(call, connection)  # type: ignore[no-any-return]


def validate_metadata(server: dict[str, Any], model: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's and a model's metadata read by KServe's own data models (its REST client has no
    metadata call): pydantic raises if a field KServe requires is missing or of the wrong type."""
    from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse, ServerMetadataResponse

    return ServerMetadataResponse.model_validate(server).model_dump(), ModelMetadataResponse.model_validate(model).model_dump()
