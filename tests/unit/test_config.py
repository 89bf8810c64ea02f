from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from densenet_server import config
from densenet_server.config import Settings, load_settings


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.images_dir, settings.weights) == ("0.0.0.0", 5000, Path("images"), None)


def test_environment_overrides_defaults() -> None:
    settings = load_settings({}, environ={"DENSENET_PORT": "5001", "DENSENET_WEIGHTS": "/w.pth", "DENSENET_MAX_BATCH_WAIT_MS": "2.5"})
    assert settings.port == 5001
    assert settings.weights == Path("/w.pth")
    assert settings.max_batch_wait_ms == 2.5


def test_flags_override_environment() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, [config.SERVER, config.MODEL])
    flags = vars(parser.parse_args(["--port", "6000", "--images-dir", "pics"]))
    settings = load_settings(flags, environ={"DENSENET_PORT": "5001", "DENSENET_HOST": "127.0.0.1"})
    assert settings.port == 6000
    assert settings.host == "127.0.0.1"
    assert settings.images_dir == Path("pics")


@pytest.mark.parametrize(
    "environ",
    [
        {"DENSENET_PORT": "seventy"}, {"DENSENET_PORT": "0"}, {"DENSENET_MAX_BATCH_SIZE": "0"}, {"DENSENET_MAX_QUEUE_IMAGES": "2"},
        {"DENSENET_SHUTDOWN_GRACE_S": "10"},  # shorter than the request deadline: accepted requests could be cut
        {"DENSENET_SHUTDOWN_GRACE_S": "0", "DENSENET_REQUEST_TIMEOUT_S": "0.5"},
        {"DENSENET_MAX_DECODING_PIXELS": "1000"},  # below --max-image-pixels: a large image could never decode
        {"DENSENET_ACCESS_LOG": ""},
    ],
)
def test_invalid_values_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        load_settings({}, environ=environ)


def test_markdown_table_lists_every_setting() -> None:
    table = config.markdown_table()
    for name in Settings.__dataclass_fields__:
        assert config.env_name(name) in table
        assert config.flag_name(name) in table
