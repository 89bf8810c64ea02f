from __future__ import annotations

import argparse
import logging
import subprocess
import sys

import pytest

from densenet_server.cli import _top_k


def test_top_k_takes_any_positive_integer_the_model_clamps_it() -> None:
    # A model may have any number of classes: more than it has means all of them (postprocess.top_k).
    assert _top_k("1") == 1 and _top_k("5000") == 5000


@pytest.mark.parametrize("raw", ["0", "-3"])
def test_top_k_below_one_is_refused(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="^must be a positive integer$"):
        _top_k(raw)


def test_the_load_generators_requests_are_not_logged_one_by_one() -> None:
    # A fresh interpreter: pytest's own logging set-up would hide what the CLI's does.
    probe = (
        "import logging; from densenet_server.cli import _configure_logging; _configure_logging('info'); "
        "print(logging.getLogger('httpx').getEffectiveLevel(), logging.getLogger('densenet_server').getEffectiveLevel())"
    )
    levels = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert levels == [str(logging.WARNING), str(logging.INFO)]
