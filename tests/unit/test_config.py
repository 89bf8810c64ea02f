from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from densenet_server import config
from densenet_server.config import Settings, load_settings


# Every default, written out here rather than read from Settings: the loader must produce these, and a
# changed default fails this test until it is changed here too (and in the README's table).
DEFAULTS = {
    "model": "densenet121",
    "model_name": None,
    "weights": None,
    "labels": None,
    "multi_label": False,
    "threshold": 0.5,
    "models_file": None,
    "weights_sha256": None,
    "threads": 0,
    "parallel_passes": 0,
    "backend": "auto",
    "precision": "auto",
    "device": "auto",
    "onnx_model": None,
    "cache_dir": None,
    "jpeg_draft": False,
    "host": "0.0.0.0",
    "port": 5000,
    "grpc_port": 8081,
    "images_dir": Path("images"),
    "workers": 0,
    "http_threads": 96,
    "resize_strips": 0,
    "log_level": "info",
    "access_log": "-",
    "shutdown_grace_s": 25,
    "api_keys_file": None,
    "metrics_open": False,
    "certfile": None,
    "keyfile": None,
    "max_batch_size": 0,
    "max_batch_wait_ms": 5.0,
    "max_queue_images": 0,
    "request_timeout_s": 20.0,
    "max_body_bytes": 20_971_520,
    "max_image_pixels": 40_000_000,
    "max_images_per_request": 16,
    "max_decoding_pixels": 80_000_000,
}


def test_defaults() -> None:
    assert dataclasses.asdict(load_settings({}, environ={})) == DEFAULTS


def test_environment_overrides_defaults() -> None:
    settings = load_settings({}, environ={"DENSENET_PORT": "5001", "DENSENET_WEIGHTS": "/w.pth", "DENSENET_MAX_BATCH_WAIT_MS": "2.5"})
    assert settings.port == 5001
    assert settings.weights == Path("/w.pth")
    assert settings.max_batch_wait_ms == 2.5


def test_the_model_settings_come_from_the_environment() -> None:
    settings = load_settings(
        {},
        environ={
            "DENSENET_MODEL": "resnet50", "DENSENET_LABELS": "/labels.txt", "DENSENET_MULTI_LABEL": "true",
            "DENSENET_THRESHOLD": "0.3",
        },
    )
    assert (settings.model, settings.labels, settings.multi_label, settings.threshold) == (
        "resnet50", Path("/labels.txt"), True, 0.3
    )


def test_access_and_tls_settings_from_flags_and_environment() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, [config.SERVER])
    flags = vars(parser.parse_args(["--api-keys-file", "/run/keys", "--metrics-open", "--certfile", "c.pem", "--keyfile", "k.pem"]))
    settings = load_settings(flags, environ={})
    assert (settings.api_keys_file, settings.metrics_open) == (Path("/run/keys"), True)
    assert (settings.certfile, settings.keyfile) == (Path("c.pem"), Path("k.pem"))
    settings = load_settings({}, environ={
        "DENSENET_API_KEYS_FILE": "/secrets/keys", "DENSENET_METRICS_OPEN": "true",
        "DENSENET_CERTFILE": "/tls/tls.crt", "DENSENET_KEYFILE": "/tls/tls.key",
    })
    assert (settings.api_keys_file, settings.metrics_open) == (Path("/secrets/keys"), True)
    assert (settings.certfile, settings.keyfile) == (Path("/tls/tls.crt"), Path("/tls/tls.key"))
    # An empty variable (a manifest's placeholder) is unset, not the current directory.
    assert load_settings({}, environ={"DENSENET_API_KEYS_FILE": ""}).api_keys_file is None


def test_no_flag_takes_a_key_itself() -> None:
    # Keys come from a file only: a key on the command line would be in `ps` and the shell's history.
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, [config.MODEL, config.SERVER, config.BATCHING, config.LIMITS])
    flags = [option for action in parser._actions for option in action.option_strings]
    assert [flag for flag in flags if "key" in flag] == ["--api-keys-file", "--keyfile"]


def test_the_served_name_is_the_model_name_else_the_model() -> None:
    assert Settings().served_name() == "densenet121"
    assert Settings(model="resnet50").served_name() == "resnet50"
    assert Settings(model="resnet50", model_name="xray").served_name() == "xray"


def test_flags_override_environment() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, [config.SERVER, config.MODEL])
    flags = vars(parser.parse_args(["--port", "6000", "--images-dir", "pics"]))
    settings = load_settings(flags, environ={"DENSENET_PORT": "5001", "DENSENET_HOST": "127.0.0.1"})
    assert settings.port == 6000
    assert settings.host == "127.0.0.1"
    assert settings.images_dir == Path("pics")


GRACE_RULE = "shutdown_grace_s must be at least request_timeout_s, so accepted requests can finish"
TLS_PAIR_RULE = "give both certfile and keyfile (TLS), or neither"


def test_grpc_port_from_flag_and_environment_and_0_turns_it_off() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, [config.SERVER])
    assert load_settings(vars(parser.parse_args(["--grpc-port", "9000"])), environ={}).grpc_port == 9000
    assert load_settings({}, environ={"DENSENET_GRPC_PORT": "0"}).grpc_port == 0


def invalid(*rules: str) -> str:
    """validate()'s message when exactly ``rules`` fire, in its order."""
    return "invalid configuration: " + "; ".join(rules)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DENSENET_PORT": "seventy"}, "port: cannot read 'seventy' as int"),
        ({"DENSENET_JPEG_DRAFT": "maybe"}, "DENSENET_JPEG_DRAFT: expected a boolean, got 'maybe'"),
        ({"DENSENET_PORT": "0"}, invalid("port must be between 1 and 65535")),
        ({"DENSENET_GRPC_PORT": "65536"}, invalid("grpc_port must be between 0 (off) and 65535")),
        ({"DENSENET_GRPC_PORT": "-1"}, invalid("grpc_port must be between 0 (off) and 65535")),
        ({"DENSENET_GRPC_PORT": "5000"}, invalid("grpc_port must differ from port (0 turns gRPC off)")),
        ({"DENSENET_MAX_BATCH_SIZE": "-1"}, invalid("max_batch_size must be 0 (automatic) or more")),
        ({"DENSENET_WORKERS": "-2"}, invalid("workers must be 0 (automatic) or more")),
        ({"DENSENET_RESIZE_STRIPS": "-1"}, invalid("resize_strips must be 0 (automatic) or more")),
        ({"DENSENET_HTTP_THREADS": "0"}, invalid("http_threads must be at least 1")),
        ({"DENSENET_MAX_BATCH_WAIT_MS": "-1"}, invalid("max_batch_wait_ms must be >= 0 and request_timeout_s > 0")),
        ({"DENSENET_REQUEST_TIMEOUT_S": "0"}, invalid("max_batch_wait_ms must be >= 0 and request_timeout_s > 0")),
        ({"DENSENET_MAX_QUEUE_IMAGES": "2", "DENSENET_MAX_IMAGES_PER_REQUEST": "2", "DENSENET_MAX_BATCH_SIZE": "4"},
         invalid("max_queue_images must be at least max_batch_size")),
        ({"DENSENET_MAX_IMAGES_PER_REQUEST": "65", "DENSENET_MAX_QUEUE_IMAGES": "64"},
         invalid("max_images_per_request must be at most max_queue_images")),
        # below --max-image-pixels: a large image could never decode
        ({"DENSENET_MAX_DECODING_PIXELS": "1000"}, invalid("max_decoding_pixels must be at least max_image_pixels")),
        # a grace of 0 s is also shorter than any deadline: both rules fire
        ({"DENSENET_SHUTDOWN_GRACE_S": "0", "DENSENET_REQUEST_TIMEOUT_S": "0.5"}, invalid("shutdown_grace_s must be at least 1", GRACE_RULE)),
        # shorter than the request deadline: accepted requests could be cut
        ({"DENSENET_SHUTDOWN_GRACE_S": "10"}, invalid(GRACE_RULE)),
        ({"DENSENET_ACCESS_LOG": ""}, invalid("access_log must be '-', a file path, or 'off'")),
        ({"DENSENET_CERTFILE": "cert.pem"}, invalid(TLS_PAIR_RULE)),
        ({"DENSENET_KEYFILE": "key.pem"}, invalid(TLS_PAIR_RULE)),
        ({"DENSENET_METRICS_OPEN": "sometimes"}, "DENSENET_METRICS_OPEN: expected a boolean, got 'sometimes'"),
        ({"DENSENET_PARALLEL_PASSES": "-1"}, invalid("parallel_passes must be 0 (automatic) or more")),
        ({"DENSENET_BACKEND": "tensorrt"}, invalid("backend must be one of auto, onnxruntime, torch")),
        ({"DENSENET_PRECISION": "int8"}, invalid("precision must be one of auto, fp32, tf32, fp16, bf16")),
        ({"DENSENET_DEVICE": "tpu"}, invalid("device must be auto, cpu, cuda or cuda:N")),
        ({"DENSENET_DEVICE": "cpu", "DENSENET_PRECISION": "fp16"},
         invalid("fp16 runs on CUDA only (--device cuda); on the CPU use fp32, or bf16 with --backend torch")),
        ({"DENSENET_ONNX_MODEL": "m.onnx", "DENSENET_WEIGHTS": "w.pth"},
         invalid("give either weights or onnx_model: an ONNX export already holds its weights")),
        ({"DENSENET_ONNX_MODEL": "m.onnx", "DENSENET_BACKEND": "torch"}, invalid("onnx_model is served by the onnxruntime backend in fp32")),
        ({"DENSENET_THRESHOLD": "0"}, invalid("threshold must be between 0 and 1")),
        ({"DENSENET_THRESHOLD": "1"}, invalid("threshold must be between 0 and 1")),
        ({"DENSENET_THRESHOLD": "half"}, "threshold: cannot read 'half' as float"),
    ],
)
def test_invalid_values_are_refused(environ: dict[str, str], message: str) -> None:
    # The whole message: these rules and no other fired (a rule that fired wrongly would be listed too).
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        load_settings({}, environ=environ)


def test_markdown_table_lists_every_setting() -> None:
    table = config.markdown_table()
    for name in Settings.__dataclass_fields__:
        assert config.env_name(name) in table
        assert config.flag_name(name) in table
