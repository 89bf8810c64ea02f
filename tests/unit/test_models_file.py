"""The TOML models file (--models-file): one Settings per model, in the file's order (the first is the
default), per-model settings applied and the server's inherited, and every mistake refused with where it is."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from densenet_server.config import Settings, load_settings
from densenet_server.models_file import ModelsFileError, model_settings

XRAY_TABLE = """
[models.xray]
model = "densenet121"
weights = "weights/xray.pth"
labels = "xray-labels.txt"
multi_label = true
threshold = 0.4
max_batch_size = 8
"""


def models_file(folder: Path, text: str) -> Path:
    path = folder / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def served(folder: Path, text: str, **server: object) -> list[Settings]:
    return model_settings(Settings(models_file=models_file(folder, text), **server))  # type: ignore[arg-type]


def test_without_a_models_file_the_settings_are_the_one_model() -> None:
    settings = Settings(model="resnet50", threads=3)
    assert model_settings(settings) == [settings]


def test_the_order_is_kept_and_the_first_is_the_default(tmp_path: Path) -> None:
    models = served(tmp_path, "[models.resnet50]\n[models.densenet121]\n[models.efficientnet_b0]\n")
    assert [(m.served_name(), m.model) for m in models] == [
        ("resnet50", "resnet50"), ("densenet121", "densenet121"), ("efficientnet_b0", "efficientnet_b0")
    ]


def test_a_tables_settings_are_applied_and_the_rest_inherited(tmp_path: Path) -> None:
    models = served(tmp_path, "[models.densenet121]\n" + XRAY_TABLE, port=6000, threads=3, max_batch_wait_ms=2.0)
    default, xray = models
    assert default == dataclasses.replace(
        Settings(port=6000, threads=3, max_batch_wait_ms=2.0), model="densenet121", model_name="densenet121"
    )
    assert (xray.model, xray.model_name, xray.served_name()) == ("densenet121", "xray", "xray")
    assert (xray.multi_label, xray.threshold, xray.max_batch_size) == (True, 0.4, 8)
    # The server's own settings, and the model settings the table leaves alone.
    assert (xray.port, xray.threads, xray.max_batch_wait_ms, xray.backend) == (6000, 3, 2.0, "auto")
    assert xray.models_file is None and default.models_file is None  # each is one model


def test_relative_paths_are_the_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    absolute = tmp_path / "elsewhere" / "model.onnx"
    xray, exported = served(folder, XRAY_TABLE + f'[models.exported]\nonnx_model = "{absolute}"\n')
    assert xray.weights == folder / "weights" / "xray.pth"
    assert xray.labels == folder / "xray-labels.txt"
    assert exported.onnx_model == absolute


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[models.xray]\nport = 6000\n", "[models.xray]: unknown key(s) port; a table may set "),
        ("[models.xray]\nmodel_name = \"other\"\n", "[models.xray]: unknown key(s) model_name; a table may set "),
        ("[models.xray]\nmax_batch_size = \"8\"\n", "[models.xray]: max_batch_size must be an integer, got '8'"),
        ("[models.xray]\nthreshold = true\n", "[models.xray]: threshold must be a number, got True"),
        ("[models.xray]\nmax_batch_size = 8.5\n", "[models.xray]: max_batch_size must be an integer, got 8.5"),
        ("[models.xray]\nmulti_label = 1\n", "[models.xray]: multi_label must be true or false, got 1"),
        ("[models.xray]\nweights = 3\n", "[models.xray]: weights must be a path, got 3"),
        ("[models.xray]\nmodel = 50\n", "[models.xray]: model must be a string, got 50"),
        ("[models.\"x ray\"]\n", "[models.x ray]: a model's name is letters, digits, '_', '.' or '-' (at most 64)"),
        (f"[models.{'m' * 65}]\n", f"[models.{'m' * 65}]: a model's name is letters, digits, '_', '.' or '-' (at most 64)"),
        ("[models]\nxray = 3\n", "[models.xray]: expected a table"),
        # validated as a whole, like any Settings
        ("[models.xray]\nthreshold = 1.5\n", "[models.xray]: invalid configuration: threshold must be between 0 and 1"),
        (
            "[models.xray]\nweights = \"w.pth\"\nonnx_model = \"m.onnx\"\n",
            "[models.xray]: invalid configuration: give either weights or onnx_model: an ONNX export already holds its weights",
        ),
    ],
    ids=[
        "server-key", "model-name", "string-for-int", "bool-for-threshold", "float-for-int", "int-for-bool",
        "int-for-path", "int-for-string", "bad-name", "long-name", "not-a-table", "bad-threshold", "weights-and-onnx",
    ],
)
def test_a_bad_table_is_refused_with_where_it_is(tmp_path: Path, text: str, problem: str) -> None:
    path = models_file(tmp_path, text)
    with pytest.raises(ModelsFileError, match=f"^{re.escape(f'{path}, {problem}')}"):
        model_settings(Settings(models_file=path))


def test_the_unknown_key_message_lists_what_a_table_may_set(tmp_path: Path) -> None:
    path = models_file(tmp_path, "[models.xray]\nport = 6000\n")
    allowed = (
        "model, weights, weights_sha256, labels, multi_label, threshold, onnx_model, backend, precision, threads, "
        "parallel_passes, jpeg_draft, max_batch_size, max_batch_wait_ms, max_queue_images"
    )
    expected = f"{path}, [models.xray]: unknown key(s) port; a table may set {allowed}"
    with pytest.raises(ModelsFileError, match=f"^{re.escape(expected)}$"):
        model_settings(Settings(models_file=path))


@pytest.mark.parametrize(
    "text", ["", "# nothing\n", "[models]\n", "title = \"x\"\n[models.a]\n", "models = 3\n"],
    ids=["empty", "comment", "no-tables", "other-key", "not-tables"],
)
def test_a_file_without_models_is_refused(tmp_path: Path, text: str) -> None:
    path = models_file(tmp_path, text)
    expected = f"the models file {path} must hold [models.<name>] tables and nothing else"
    with pytest.raises(ModelsFileError, match=f"^{re.escape(expected)}$"):
        model_settings(Settings(models_file=path))


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    with pytest.raises(ModelsFileError, match=rf"^cannot read the models file {missing}: \[Errno 2\] No such file"):
        model_settings(Settings(models_file=missing))
    broken = models_file(tmp_path, "[models.xray\n")
    with pytest.raises(ModelsFileError, match=rf"^cannot read the models file {broken}: Expected ']' at the end of a table declaration"):
        model_settings(Settings(models_file=broken))


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"weights": Path("/w.pth")}, "weights"),
        ({"model": "resnet50", "labels": Path("l.txt")}, "model, labels"),
        ({"multi_label": True, "threshold": 0.3}, "multi_label, threshold"),
        ({"model_name": "x", "weights_sha256": "00", "onnx_model": Path("m.onnx")}, "model_name, weights_sha256, onnx_model"),
    ],
)
def test_per_model_flags_beside_a_models_file_are_refused(given: dict[str, object], named: str) -> None:
    expected = f"invalid configuration: with models_file, give {named} in the models file, per model"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_settings({"models_file": Path("models.toml"), **given}, environ={})


def test_per_model_environment_beside_a_models_file_is_ignored() -> None:
    """A container image sets DENSENET_MODEL and DENSENET_ONNX_MODEL for its one model; a models file
    mounted into it describes the models instead."""
    environ = {
        "DENSENET_MODELS_FILE": "models.toml", "DENSENET_MODEL": "resnet50", "DENSENET_ONNX_MODEL": "/opt/m.onnx",
        "DENSENET_MULTI_LABEL": "true",
    }
    settings = load_settings({}, environ=environ)
    assert (settings.models_file, settings.model, settings.onnx_model, settings.multi_label) == (
        Path("models.toml"), "densenet121", None, False,
    )


def test_server_flags_beside_a_models_file_are_welcome() -> None:
    settings = load_settings({}, environ={"DENSENET_MODELS_FILE": "models.toml", "DENSENET_THREADS": "2"})
    assert (settings.models_file, settings.threads) == (Path("models.toml"), 2)
