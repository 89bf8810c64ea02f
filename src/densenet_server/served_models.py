"""The models one server serves: one InferenceService per model, by name, the default first.

Routes pick a model by name (``?model=``, ``/v2/models/<name>``) and never touch a model themselves. The
server is ready when every model is, and drains them together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from .config import Settings
from .metrics import Metrics
from .models_file import model_settings
from .pixel_budget import PixelBudget
from .service import InferenceService


class UnknownModel(LookupError):
    """No model of that name is served here (404)."""

    def __init__(self, name: str, served: Sequence[str]) -> None:
        super().__init__(f"unknown model {name!r}; this server serves {', '.join(repr(n) for n in served)}")
        self.name = name


class ServedModels:
    def __init__(self, services: Sequence[InferenceService]) -> None:
        if not services:
            raise ValueError("a server serves at least one model")
        self._services = {service.name: service for service in services}
        if len(self._services) != len(services):
            raise ValueError("two models are served under the same name")

    @classmethod
    def in_process(cls, settings: Settings) -> ServedModels:
        """Every model of ``settings`` with its engine in this process (tests, tools), sharing one metrics
        registry and one decoding budget."""
        metrics = Metrics()
        budget = PixelBudget(settings.max_decoding_pixels)
        return cls(
            [InferenceService(each, metrics=metrics, pixel_budget=budget) for each in model_settings(settings)]
        )

    @property
    def default(self) -> InferenceService:
        return next(iter(self._services.values()))

    @property
    def names(self) -> list[str]:
        return list(self._services)

    @property
    def metrics(self) -> Metrics:
        return self.default.metrics

    def __iter__(self) -> Iterator[InferenceService]:
        return iter(self._services.values())

    def __len__(self) -> int:
        return len(self._services)

    def get(self, name: str | None) -> InferenceService:
        """The model served as ``name``; the default for None."""
        if name is None:
            return self.default
        service = self._services.get(name)
        if service is None:
            raise UnknownModel(name, self.names)
        return service

    @property
    def loaded(self) -> bool:
        return all(service.loaded for service in self)

    @property
    def ready(self) -> bool:
        return all(service.ready for service in self)

    def start(self, on_failure: Callable[[BaseException], None]) -> list[threading.Thread]:
        return [service.start(on_failure) for service in self]

    def begin_shutdown(self) -> None:
        for service in self:
            service.begin_shutdown()

    def stop(self) -> None:
        for service in self:
            service.stop()
