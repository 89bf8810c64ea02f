"""Messages between an HTTP front and the engine process, over one Unix socket connection per front.

Each message is one frame of multiprocessing.connection (length-prefixed): a fixed header, then a payload.
Pixels travel as raw array bytes, never pickled (a pickle from a socket can run code); encoded JPEGs
for an engine that decodes them on its GPU travel as a table of lengths and the images' bytes. Requests carry an
id chosen by the front; every INFER gets exactly one RESULT or ERROR with that id, unless the front
CANCELs it first.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model_record import Preprocessing


class Kind(enum.IntEnum):
    EXPECT = 1  # front -> engine: ``count`` images are being decoded for request ``id``
    INFER = 2  # front -> engine: rows (payload) of request ``id``; ``seconds``: time left to its deadline
    CANCEL = 3  # front -> engine: request ``id`` was given up (deadline) or its images will not come
    RESULT = 4  # engine -> front: logits (payload); ``aux``: images in the forward pass
    ERROR = 5  # engine -> front: ``aux``: an ErrorCode; ``seconds``: retry-after; payload: the message


class RowsType(enum.IntEnum):
    CROPS = 1  # uint8 [N, crop, crop, 3]
    PIXELS = 2  # float32 [N, 3, crop, crop]
    JPEG = 3  # N encoded JPEGs: N little-endian uint32 lengths, then the images' bytes, in order


class ErrorCode(enum.IntEnum):
    QUEUE_FULL = 1
    DEADLINE = 2
    STOPPING = 3
    NOT_READY = 4
    FAILED = 5
    UNDECODED = 6  # the engine could not decode a JPEG on its device: the front decodes the request itself


_HEADER = struct.Struct("<BQIdI")  # kind, id, count, seconds, aux
_JPEG_LENGTH = np.dtype("<u4")


class ProtocolViolation(ValueError):
    """A frame that no well-behaved peer sends."""


@dataclass(frozen=True)
class Message:
    kind: Kind
    request_id: int
    count: int = 0
    seconds: float = 0.0
    aux: int = 0
    payload: bytes | memoryview = b""


def encode(message: Message) -> bytes:
    header = _HEADER.pack(message.kind, message.request_id, message.count, message.seconds, message.aux)
    return header + bytes(message.payload) if message.payload else header


def decode(frame: bytes) -> Message:
    if len(frame) < _HEADER.size:
        raise ProtocolViolation(f"a frame of {len(frame)} bytes is shorter than the header")
    kind, request_id, count, seconds, aux = _HEADER.unpack_from(frame)
    try:
        kind = Kind(kind)
    except ValueError:
        raise ProtocolViolation(f"unknown message kind {kind}") from None
    return Message(kind, request_id, count, seconds, aux, memoryview(frame)[_HEADER.size :])


def infer(request_id: int, rows: np.ndarray, timeout_s: float) -> bytes:
    rows_type = RowsType.CROPS if rows.dtype == np.uint8 else RowsType.PIXELS
    payload = np.ascontiguousarray(rows).data
    return encode(Message(Kind.INFER, request_id, len(rows), timeout_s, rows_type, payload))


def infer_jpegs(request_id: int, datas: Sequence[bytes], timeout_s: float) -> bytes:
    """An INFER of encoded JPEGs (RowsType.JPEG), for an engine that decodes them itself."""
    lengths = np.array([len(data) for data in datas], dtype=_JPEG_LENGTH)
    payload = b"".join([lengths.tobytes(), *datas])
    return encode(Message(Kind.INFER, request_id, len(datas), timeout_s, RowsType.JPEG, payload))


def carries_jpegs(message: Message) -> bool:
    return message.aux == RowsType.JPEG


def rows_of(message: Message, preprocessing: Preprocessing) -> np.ndarray:
    """The rows an INFER message of crops or pixels carries (a read-only view of its payload), for the
    model whose input ``preprocessing`` describes."""
    if carries_jpegs(message):
        raise ProtocolViolation("JPEG rows are encoded images, not an array (see jpegs_of)")
    rows = {
        RowsType.CROPS: (np.uint8, preprocessing.crop_shape),
        RowsType.PIXELS: (np.float32, preprocessing.input_shape),
    }
    try:
        dtype, shape = rows[RowsType(message.aux)]
    except ValueError:
        raise ProtocolViolation(f"unknown rows type {message.aux}") from None
    expected = message.count * int(np.prod(shape)) * np.dtype(dtype).itemsize
    if message.count < 1 or len(message.payload) != expected:
        raise ProtocolViolation(f"{message.count} rows need {expected} bytes, got {len(message.payload)}")
    return np.frombuffer(message.payload, dtype=dtype).reshape(message.count, *shape)


def jpegs_of(message: Message) -> list[bytes]:
    """The encoded images of an INFER of RowsType.JPEG, checked against its table. (Copies: the decoders and
    the header reader take bytes, and a copy costs little next to decoding.)"""
    if not carries_jpegs(message):
        raise ProtocolViolation(f"rows type {message.aux} is not JPEG")
    payload = memoryview(message.payload)
    table = message.count * _JPEG_LENGTH.itemsize
    if message.count < 1 or len(payload) < table:
        raise ProtocolViolation(f"{message.count} JPEGs need a {table}-byte length table, got {len(payload)} bytes")
    # int64: a sum of uint32 lengths must not wrap around.
    lengths = np.frombuffer(payload[:table], dtype=_JPEG_LENGTH).astype(np.int64)
    if int(lengths.min()) < 1:
        raise ProtocolViolation("a JPEG of 0 bytes")
    if int(lengths.sum()) != len(payload) - table:
        raise ProtocolViolation(
            f"the JPEG lengths add up to {int(lengths.sum())} bytes; the payload holds {len(payload) - table}"
        )
    ends = table + np.cumsum(lengths)
    return [bytes(payload[int(end - length) : int(end)]) for end, length in zip(ends, lengths)]


def result(request_id: int, logits: np.ndarray, batch_size: int) -> bytes:
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    return encode(Message(Kind.RESULT, request_id, len(logits), 0.0, batch_size, logits.data))


def logits_of(message: Message) -> np.ndarray:
    rows = message.count
    values = np.frombuffer(message.payload, dtype=np.float32)
    if rows < 1 or values.size % rows:
        raise ProtocolViolation(f"{values.size} logits do not split into {rows} rows")
    return values.reshape(rows, -1)


def error(request_id: int, code: ErrorCode, message: str, retry_after_s: float = 0.0) -> bytes:
    return encode(Message(Kind.ERROR, request_id, 0, retry_after_s, code, message.encode()))
