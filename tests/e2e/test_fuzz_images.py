"""Hypothesis mutates valid images of every accepted format and mode (flipped bits, overwritten,
inserted, deleted and repeated bytes, cuts; mostly in the headers, where the parsers decide): the decoder
returns a usable image or an ImageError, and the server answers 200 or a JSON 4xx, never anything else,
and exactly what the app answers in-process for the same bytes. Seeded and bounded, so CI stays fast and
repeatable."""

from __future__ import annotations

import warnings
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.answers import assert_same_answer
from support.hostile_corpus import INVALID, MAX_IMAGE_PIXELS, OK, TOO_LARGE, UNSUPPORTED, build_corpus
from support.server_process import ServerProcess

from densenet_server.decoding import ImageError, decode_image
from densenet_server.model_record import DENSENET121
from densenet_server.preprocess import preprocess

# The corpus' valid images, small enough to mutate quickly: every accepted format and odd mode.
SEEDS = [case.data for case in build_corpus() if case.status == 200 and len(case.data) < 20_000]
HEADER_BYTES = 96
FUZZ_SETTINGS = settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
DECODER_EXAMPLES = 600
HTTP_EXAMPLES = 80


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        last = len(data) - 1
        position = draw(st.one_of(st.integers(0, min(HEADER_BYTES, last)), st.integers(0, last)))
        mutation = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "repeat", "cut"]))
        if mutation == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif mutation == "overwrite":
            data[position] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF])) if draw(st.booleans()) else draw(st.integers(0, 255))
        elif mutation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif mutation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif mutation == "repeat":
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
        else:
            del data[position:]
    return bytes(data)


@settings(FUZZ_SETTINGS, max_examples=DECODER_EXAMPLES)
@given(data=mutated_images())
def test_decoder_returns_an_image_or_an_image_error(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libtiff and Pillow warn about what they repair; not our concern
        try:
            pixels = preprocess(decode_image(data, MAX_IMAGE_PIXELS), DENSENET121.preprocessing)
        except ImageError:
            return
    assert pixels.shape == DENSENET121.preprocessing.input_shape


# Every (status, code) a mutated image may get, as one table: the corpus' answers for a non-empty body...
ANSWERS = {OK, INVALID, UNSUPPORTED, TOO_LARGE}
# ...and for a body that the mutations cut to nothing.
EMPTY_BODY = (400, "missing_file")


def status_and_code(status: int, body: dict[str, Any]) -> tuple[int, str | None]:
    return status, body["error"]["code"] if status != 200 else None


def test_server_answers_mutated_images_like_the_in_process_app(server: ServerProcess, app_client: FlaskClient) -> None:
    """Each mutated image: a (status, code) from the table, and the in-process app's body for the same bytes
    (classification or error alike); afterwards the server is still ready and logged no failure."""
    mark = server.log_mark()

    @settings(FUZZ_SETTINGS, max_examples=HTTP_EXAMPLES)
    @given(data=mutated_images())
    def post(data: bytes) -> None:
        response = server.post("/inference", data=data, headers={"Content-Type": "application/octet-stream"})
        assert response.headers["Content-Type"] == "application/json", response.text
        body = response.json()
        assert status_and_code(response.status_code, body) in (ANSWERS if data else {EMPTY_BODY}), body
        expected = app_client.post("/inference", data=data, content_type="application/octet-stream")
        assert response.status_code == expected.status_code
        if response.status_code == 200:
            assert_same_answer(body, expected.get_json())
        else:
            assert body == expected.get_json()

    post()
    server.assert_healthy_since(mark)
