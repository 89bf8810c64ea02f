"""What a JPEG's markers say about how it is coded, read without decoding a pixel (and without Pillow).

Pillow tells the mode and size of a JPEG but not which coding process its frame uses (baseline,
progressive, lossless, arithmetic, hierarchical), its component ids or an MPF (multi-picture) segment;
the GPU decoding route (gpu_decode.py) needs those to send nvJPEG only what it decodes like libjpeg does.
"""

from __future__ import annotations

from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
SOS = 0xDA
APP2 = 0xE2
APP14 = 0xEE
# Start-of-frame markers C0-CF, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and the restart markers RST0-RST7.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class Component:
    id: int
    h: int  # horizontal sampling factor
    v: int  # vertical sampling factor


@dataclass(frozen=True)
class JpegHeader:
    sof: int  # the start-of-frame marker: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, ...
    bits: int  # sample precision
    width: int
    height: int
    components: tuple[Component, ...]
    adobe_transform: int | None  # APP14 "Adobe" colour transform: 0 none (RGB/CMYK), 1 YCbCr, 2 YCCK
    multi_picture: bool  # an APP2 "MPF" segment: an MPO file (Pillow serves its first frame)
    ends_with_eoi: bool  # the data ends with the end-of-image marker (not truncated)


def read_jpeg_header(data: bytes) -> JpegHeader | None:
    """The header of a JPEG, from its markers up to the first scan; None if it is not one or they are broken."""
    if not data.startswith(SOI):
        return None
    position = len(SOI)
    frame: tuple[int, bytes] | None = None
    adobe_transform = None
    multi_picture = False
    while True:
        if position >= len(data) or data[position] != 0xFF:
            return None
        while position < len(data) and data[position] == 0xFF:  # fill bytes may precede a marker
            position += 1
        if position >= len(data):
            return None
        marker = data[position]
        position += 1
        if marker in _STANDALONE:
            continue
        if position + 2 > len(data):
            return None
        length = int.from_bytes(data[position : position + 2], "big")
        segment = data[position + 2 : position + length]
        if length < 2 or len(segment) != length - 2:
            return None
        position += length
        if marker == SOS:
            break
        if marker in SOF_MARKERS and frame is None:
            frame = (marker, segment)
        elif marker == APP14 and segment.startswith(b"Adobe") and len(segment) >= 12:
            adobe_transform = segment[11]
        elif marker == APP2 and segment.startswith(b"MPF\x00"):
            multi_picture = True
    if frame is None:
        return None
    return _with_frame(frame[0], frame[1], adobe_transform, multi_picture, data.endswith(EOI))


def _with_frame(sof: int, segment: bytes, adobe_transform: int | None, multi_picture: bool, ends: bool) -> JpegHeader | None:
    if len(segment) < 6:
        return None
    count = segment[5]
    if len(segment) < 6 + 3 * count:
        return None
    components = tuple(
        Component(segment[6 + 3 * i], segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 0x0F) for i in range(count)
    )
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    return JpegHeader(sof, segment[0], width, height, components, adobe_transform, multi_picture, ends)
