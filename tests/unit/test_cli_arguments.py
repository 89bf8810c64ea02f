from __future__ import annotations

import argparse

import pytest

from densenet_server.cli import _top_k


def test_top_k_takes_any_positive_integer_the_model_clamps_it() -> None:
    # A model may have any number of classes: more than it has means all of them (postprocess.top_k).
    assert _top_k("1") == 1 and _top_k("5000") == 5000


@pytest.mark.parametrize("raw", ["0", "-3"])
def test_top_k_below_one_is_refused(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="^must be a positive integer$"):
        _top_k(raw)
