"""Awkward and hostile images (tests/support/hostile_corpus.py): each gets its documented answer, at the
decoder and end to end (as an upload and as a file of the folder), and leaves the server ready.

The answer is checked, not just its status: a valid image gets the classification that the decoder's
pixels give through the model in-process, and an error the same body as in-process."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import requests
from flask.testing import FlaskClient
from support.answers import assert_error, assert_same_answer
from support.hostile_corpus import MAX_IMAGE_PIXELS, Case, animated, build_corpus, png
from support.server_process import ServerProcess

from densenet_server.decoding import ImageError, ImageTooLarge, InvalidImage, decode_image
from densenet_server.errors import api_error_from
from densenet_server.model_record import DENSENET121
from densenet_server.postprocess import build_answer
from densenet_server.preprocess import preprocess
from densenet_server.service import InferenceService

CORPUS = build_corpus()
CORPUS_FOLDER = "corpus"


def by_name(cases: list[Case]) -> list[object]:
    return [pytest.param(case, id=case.name) for case in cases]


Answer = tuple[int, dict[str, Any]]


@pytest.fixture(scope="module")
def in_process_answer(app_client: FlaskClient) -> Callable[[Case], Answer]:
    """(status, JSON body) of the in-process app for a case uploaded with its name: what the real server
    must answer too, the same classification or the same error, through either of its routes."""
    answers: dict[str, Answer] = {}

    def answer(case: Case) -> Answer:
        if case.name not in answers:
            upload = {"file": (io.BytesIO(case.data), case.name, "application/octet-stream")}
            response = app_client.post("/inference", data=upload)
            answers[case.name] = (response.status_code, response.get_json())
        return answers[case.name]

    return answer


def assert_answer(response: requests.Response, case: Case, expected: Answer) -> None:
    """The case's documented status and code, and the body the in-process app gives for its bytes."""
    assert (response.status_code, response.headers["Content-Type"]) == (case.status, "application/json"), response.text
    body = response.json()
    assert expected[0] == case.status, expected
    if case.code is None:
        assert_same_answer(body, expected[1])
    else:
        assert_error(response, case.status, case.code)
        assert body == expected[1]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's note on two broken TIFFs
@pytest.mark.parametrize("case", by_name(CORPUS))
def test_decoder_answers_each_case(
    case: Case, inference_service: InferenceService, in_process_answer: Callable[[Case], Answer]
) -> None:
    try:
        pixels = preprocess(decode_image(case.data, MAX_IMAGE_PIXELS), DENSENET121.preprocessing)
    except ImageError as exc:
        error = api_error_from(exc)
        assert error is not None and (error.status, error.code) == case.expected, exc
        return
    assert case.expected == (200, None)
    assert pixels.shape == DENSENET121.preprocessing.input_shape
    # The decoder's pixels, through the model, give the answer the app gives for the same bytes.
    probabilities = inference_service.probabilities(pixels[np.newaxis])[0]
    status, body = in_process_answer(case)
    assert status == 200, body
    assert_same_answer(body, build_answer(inference_service.info, probabilities, 5))


@pytest.fixture(scope="module")
def corpus_in_images_dir(images_dir: Path) -> str:
    """The corpus as files of the served folder (in a sub-folder of its own)."""
    folder = images_dir / CORPUS_FOLDER
    folder.mkdir(exist_ok=True)
    for case in CORPUS:
        (folder / case.name).write_bytes(case.data)
    return CORPUS_FOLDER


@pytest.mark.parametrize("case", by_name(CORPUS))
def test_upload_answers_each_case(
    server: ServerProcess, in_process_answer: Callable[[Case], Answer], case: Case
) -> None:
    mark = server.log_mark()
    response = server.post("/inference", files={"file": (case.name, case.data, "application/octet-stream")})
    assert_answer(response, case, in_process_answer(case))
    server.assert_healthy_since(mark)


@pytest.mark.parametrize("case", by_name(CORPUS))
def test_file_of_the_folder_answers_each_case(
    server: ServerProcess, corpus_in_images_dir: str, in_process_answer: Callable[[Case], Answer], case: Case
) -> None:
    mark = server.log_mark()
    assert_answer(server.get(f"/inference/{corpus_in_images_dir}/{quote(case.name)}"), case, in_process_answer(case))
    server.assert_healthy_since(mark)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_are_classified_by_their_first_frame(fmt: str) -> None:
    red, green, blue = decode_image(animated(fmt, ["red", "lime", "blue"]), MAX_IMAGE_PIXELS).getpixel((5, 5))
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize("side", [10_000, 100_000])  # over Pillow's warning threshold (89 MP), and its error one
def test_bombs_are_refused_by_the_configured_limit_without_pillow_warnings(side: int) -> None:
    bomb = png(side, side, 8, 2, b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        with pytest.raises(ImageTooLarge, match=f"{side}x{side} = .* the limit is 40000000 pixels"):
            decode_image(bomb, MAX_IMAGE_PIXELS)


def test_the_configured_pixel_limit_governs_not_pillows_own() -> None:
    # 90 MP is over Pillow's own threshold (89 MP) but under this limit: it gets as far as decoding,
    # which fails only because the file holds no pixel data.
    ninety_megapixels = png(9_500, 9_500, 8, 0, b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidImage):
            decode_image(ninety_megapixels, 200_000_000)
