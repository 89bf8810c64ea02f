"""scripts/bench_models.py: a one-model file made from a table of the models file serves that model alone,
with the same settings and the same relative paths."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from densenet_server.config import Settings
from densenet_server.models_file import model_settings

ROOT = Path(__file__).resolve().parents[2]


def bench_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_models", ROOT / "scripts" / "bench_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_models", module)
    spec.loader.exec_module(module)
    return module


def test_one_model_file_serves_that_table_alone(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        '[models.densenet121]\nweights = "a.pth"\n\n'
        '[models.xray]\nmodel = "densenet121"\nweights = "x y.pth"\nlabels = "say \\"hi\\".txt"\n'
        "multi_label = true\nthreshold = 0.4\nmax_batch_size = 8\n",
        encoding="utf-8",
    )
    single = bench_models().one_model_file(models, "xray", tmp_path)
    (alone,) = model_settings(Settings(models_file=single))
    (_, xray) = model_settings(Settings(models_file=models))
    assert alone == xray
    assert alone.labels == tmp_path / 'say "hi".txt'
