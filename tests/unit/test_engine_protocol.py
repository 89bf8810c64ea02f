"""The front <-> engine messages: what goes in comes out, and malformed frames are refused."""

from __future__ import annotations

import numpy as np
import pytest

from densenet_server.engine import protocol
from densenet_server.model_record import DENSENET121, Preprocessing

PREPROCESSING = DENSENET121.preprocessing
# efficientnet_b1's input: the shapes the rows are read with come from the model's record, not from 224.
CROP_240 = Preprocessing(255, 240, "bicubic", PREPROCESSING.mean, PREPROCESSING.std)


@pytest.mark.parametrize("preprocessing", [PREPROCESSING, CROP_240], ids=["224", "240"])
def test_crops_and_pixels_travel_unchanged(preprocessing: Preprocessing) -> None:
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (2, *preprocessing.crop_shape), dtype=np.uint8)
    pixels = rng.normal(size=(3, *preprocessing.input_shape)).astype(np.float32)
    for rows in (crops, pixels):
        message = protocol.decode(protocol.infer(41, rows, 2.5))
        assert (message.kind, message.request_id, message.count, message.seconds) == (protocol.Kind.INFER, 41, len(rows), 2.5)
        decoded = protocol.rows_of(message, preprocessing)
        assert decoded.dtype == rows.dtype and np.array_equal(decoded, rows)


def test_rows_of_another_models_size_are_refused() -> None:
    crops = np.zeros((1, *PREPROCESSING.crop_shape), dtype=np.uint8)
    with pytest.raises(protocol.ProtocolViolation, match="^1 rows need 172800 bytes, got 150528$"):
        protocol.rows_of(protocol.decode(protocol.infer(1, crops, 1.0)), CROP_240)


def test_results_and_errors_travel_unchanged() -> None:
    logits = np.arange(2 * 1000, dtype=np.float32).reshape(2, 1000)
    message = protocol.decode(protocol.result(7, logits, batch_size=5))
    assert (message.kind, message.request_id, message.aux) == (protocol.Kind.RESULT, 7, 5)
    assert np.array_equal(protocol.logits_of(message), logits)
    error = protocol.decode(protocol.error(8, protocol.ErrorCode.QUEUE_FULL, "full, retry", 3.0))
    assert (error.kind, error.aux, error.seconds, bytes(error.payload)) == (
        protocol.Kind.ERROR, protocol.ErrorCode.QUEUE_FULL, 3.0, b"full, retry"
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x02\x00", "shorter than the header"),
        (protocol.encode(protocol.Message(protocol.Kind.INFER, 1, 1, 1.0, protocol.RowsType.CROPS, b"\x00" * 10)), "1 rows need 150528 bytes, got 10"),
        (protocol.encode(protocol.Message(protocol.Kind.INFER, 1, 0, 1.0, protocol.RowsType.CROPS)), "0 rows need 0 bytes"),
        (protocol.encode(protocol.Message(protocol.Kind.INFER, 1, 1, 1.0, 9, b"\x00" * 4)), "unknown rows type 9"),
    ],
)
def test_malformed_rows_are_refused(frame: bytes, message: str) -> None:
    with pytest.raises(protocol.ProtocolViolation, match=message):
        protocol.rows_of(protocol.decode(frame), PREPROCESSING)


def test_unknown_kind_is_refused() -> None:
    frame = bytearray(protocol.encode(protocol.Message(protocol.Kind.CANCEL, 1)))
    frame[0] = 99
    with pytest.raises(protocol.ProtocolViolation, match="unknown message kind 99"):
        protocol.decode(bytes(frame))


def test_logits_that_do_not_split_into_rows_are_refused() -> None:
    frame = protocol.encode(protocol.Message(protocol.Kind.RESULT, 1, 3, 0.0, 1, np.zeros(10, np.float32).tobytes()))
    with pytest.raises(protocol.ProtocolViolation, match="10 logits do not split into 3 rows"):
        protocol.logits_of(protocol.decode(frame))
