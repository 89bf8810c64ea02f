"""The methods of `inference.GRPCInferenceService` this server implements: ServerLive, ServerReady,
ModelReady, ServerMetadata, ModelMetadata, RepositoryIndex and ModelInfer. The others (streaming,
statistics, configuration, model load/unload, shared memory, tracing, logging) keep the generated base's
answer, UNIMPLEMENTED.

Each method turns a request into an answer through v2_inference (what the REST routes call too) and raises
the domain's errors; calls.py says them as gRPC status codes.
"""

from __future__ import annotations

from typing import Any

from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from .. import v2_inference
from ..model_summary import summarize
from ..routes.v2_repository import repository_index
from ..served_models import ServedModels
from .tensors import infer_request, infer_response


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(self, models: ServedModels) -> None:
        self._models = models
        # What is the server's, not a model's (limits, timeouts): the default model's, as for HTTP.
        self._settings = models.default.settings

    def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._models.ready)

    def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        # A model this server does not serve is simply not ready, as Triton answers (and as the REST
        # route's 404 reads to Triton's HTTP client): tritonclient's is_model_ready() says False.
        try:
            chosen = v2_inference.chosen_model(self._models, request.name, request.version)
        except LookupError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=chosen.ready)

    def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**v2_inference.server_metadata())

    def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        metadata = v2_inference.model_metadata(v2_inference.chosen_model(self._models, request.name, request.version))
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**tensor) for tensor in metadata["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**tensor) for tensor in metadata["outputs"]],
        )

    def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Any) -> pb.RepositoryIndexResponse:
        index = repository_index([summarize(each) for each in self._models], request.ready)
        return pb.RepositoryIndexResponse(models=[pb.RepositoryIndexResponse.ModelIndex(**entry) for entry in index])

    def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        chosen = v2_inference.chosen_model(self._models, request.model_name, request.model_version)
        v2_inference.ensure_loaded(chosen)
        record = chosen.info.record
        parsed = infer_request(request, record.num_classes, record.preprocessing.input_shape)
        probabilities = v2_inference.probabilities(chosen, parsed, self._settings.max_images_per_request)
        return infer_response(parsed, probabilities, record.categories, chosen.name, record.version)
