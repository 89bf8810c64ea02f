"""Prometheus metrics of the server: HTTP requests, batching, and where inference time goes.

Each app owns its own registry (not prometheus_client's global one), so several apps in one process
(tests) never collide. Everything about inference is labelled by the model's served name (ModelMetrics
binds it), so that one server's several models count apart. Under `serve`, several processes count (the HTTP fronts and the engine process):
then PROMETHEUS_MULTIPROC_DIR is set for all of them, every process writes its values there, and /metrics
in any front adds them all up (prometheus_client's multiprocess mode); gauges say how processes combine.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from .engine.base import ModelInfo

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

__all__ = ["Metrics", "ModelMetrics", "PROMETHEUS_CONTENT_TYPE"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        # `route` is the URL rule (e.g. /inference/<path:filename>), never the raw path, so that
        # arbitrary file names cannot grow the number of series without bound.
        self.requests = Counter(
            "densenet_http_requests_total",
            "HTTP requests answered, by method, route (URL rule) and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "densenet_http_request_duration_seconds",
            "Time from receiving a request to returning its answer, by method and route.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        # gRPC methods are a fixed set (the service's), so they bound these series as URL rules do.
        self.grpc_requests = Counter(
            "densenet_grpc_requests_total",
            "gRPC calls answered, by method (e.g. ModelInfer) and status code (e.g. OK, INVALID_ARGUMENT).",
            ["method", "code"],
            registry=registry,
        )
        self.grpc_request_seconds = Histogram(
            "densenet_grpc_request_duration_seconds",
            "Time from receiving a gRPC call to returning its answer, by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "densenet_inference_batch_size",
            "Images in each forward pass of the dynamic batcher, by model.",
            ["model"],
            buckets=_BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "densenet_stage_duration_seconds",
            "Time spent per stage: preprocess (decode + resize of one image), batcher (one request's "
            "wait in the queue plus its batch's forward pass), inference (one batch's forward pass); by model.",
            ["model", "stage"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.images_classified = Counter(
            "densenet_images_classified_total",
            "Images that went through the model successfully, by model.",
            ["model"],
            registry=registry,
        )
        self.image_errors = Counter(
            "densenet_image_errors_total",
            "Images refused before inference, by model and error kind (invalid, unsupported format, too large).",
            ["model", "kind"],
            registry=registry,
        )
        # Only the engine process sets these gauges; the fronts' zeros must not hide its values.
        self.queue_depth = Gauge(
            "densenet_queue_images",
            "Images waiting in the batching queue, by model.",
            ["model"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.model_load_seconds = Gauge(
            "densenet_model_load_seconds",
            "Seconds it took to load and warm up the model (0 until loaded), by model.",
            ["model"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.model_ready = Gauge(
            "densenet_model_ready",
            "1 once the model is loaded and warm, else 0; by model.",
            ["model"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.model_info = Gauge(
            "densenet_model_info",
            "1 for the model being served: its backend, precision, device and weights.",
            ["model", "backend", "precision", "device", "weights", "weights_published"],
            registry=registry,
            multiprocess_mode="max",
        )

    def for_model(self, model: str) -> ModelMetrics:
        return ModelMetrics(self, model)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def observe_grpc_call(self, method: str, code: str, seconds: float) -> None:
        self.grpc_requests.labels(method, code).inc()
        self.grpc_request_seconds.labels(method).observe(seconds)

    def exposition(self) -> bytes:
        directory = os.environ.get(MULTIPROCESS_DIR_ENV)
        if not directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        return generate_latest(registry)


class ModelMetrics:
    """The inference metrics of one model: ``metrics``' families with the model's label bound."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.metrics = metrics
        self.model = model
        # Every series of the model exists from the start (at 0), so that dashboards and rate() see a model
        # that has not answered yet, rather than no model.
        for family in (metrics.images_classified, metrics.batch_size, metrics.queue_depth):
            family.labels(model)
        metrics.model_load_seconds.labels(model).set(0)
        metrics.model_ready.labels(model).set(0)

    def image_refused(self, kind: str) -> None:
        self.metrics.image_errors.labels(self.model, kind).inc()

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.metrics.stage_seconds.labels(self.model, stage).observe(seconds)

    def count_classified(self, images: int) -> None:
        self.metrics.images_classified.labels(self.model).inc(images)

    def set_queue_depth(self, images: int) -> None:
        self.metrics.queue_depth.labels(self.model).set(images)

    def observe_model_loaded(self, info: ModelInfo, seconds: float) -> None:
        self.metrics.model_load_seconds.labels(self.model).set(seconds)
        self.metrics.model_info.labels(
            info.name, info.backend, info.precision, info.device, info.weights.id,
            str(info.weights.published).lower(),
        ).set(1)
        self.metrics.model_ready.labels(self.model).set(1)

    def observe_batch(self, batch_size: int, seconds: float) -> None:
        """The Batcher's on_batch hook: called by its worker after each forward pass."""
        self.metrics.batch_size.labels(self.model).observe(batch_size)
        self.observe_stage("inference", seconds)
