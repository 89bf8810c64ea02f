"""What the document says of the served models: their names, versions and largest class count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model_summary import ModelSummary


@dataclass(frozen=True)
class Served:
    """What the document says of the served models."""

    names: list[str]  # the default first
    versions: list[str]
    # The largest class count, the bound of top_k and of a class index; None until every model is loaded.
    most_classes: int | None

    @classmethod
    def of(cls, models: Sequence[ModelSummary]) -> Served:
        counts = [model.classes for model in models]
        known = [count for count in counts if count is not None]
        most = max(known) if known and len(known) == len(counts) else None
        return cls([model.name for model in models], sorted({model.version for model in models}), most)

    def listed(self) -> str:
        return ", ".join(f"`{name}`" for name in self.names)
