"""Awkward and hostile images (tests/support/hostile_corpus.py): each gets its documented answer, at the
decoder and end to end, and the server stays ready afterwards."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from support.hostile_corpus import MAX_IMAGE_PIXELS, Case, animated, build_corpus, png
from support.server_process import ServerProcess

from densenet_server.decoding import ImageError, ImageTooLarge, InvalidImage, decode_image
from densenet_server.errors import api_error_from
from densenet_server.preprocess import INPUT_SHAPE, preprocess

CORPUS = build_corpus()
CORPUS_FOLDER = "corpus"


def by_name(cases: list[Case]) -> list[object]:
    return [pytest.param(case, id=case.name) for case in cases]


def assert_answer(response: requests.Response, case: Case) -> None:
    assert response.status_code == case.status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    if case.code is None:
        assert body["class"] == body["top_k"][0]["label"] and len(body["top_k"]) == 5
    else:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        assert body["error"]["code"] == case.code and body["error"]["message"]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's note on two broken TIFFs
@pytest.mark.parametrize("case", by_name(CORPUS))
def test_decoder_answers_each_case(case: Case) -> None:
    try:
        pixels = preprocess(decode_image(case.data, MAX_IMAGE_PIXELS))
    except ImageError as exc:
        error = api_error_from(exc)
        assert error is not None and (error.status, error.code) == case.expected, exc
        return
    assert case.expected == (200, None)
    assert pixels.shape == INPUT_SHAPE


@pytest.fixture(scope="module")
def corpus_in_images_dir(images_dir: Path) -> str:
    """The corpus as files of the served folder (in a sub-folder of its own)."""
    folder = images_dir / CORPUS_FOLDER
    folder.mkdir(exist_ok=True)
    for case in CORPUS:
        (folder / case.name).write_bytes(case.data)
    return CORPUS_FOLDER


@pytest.mark.parametrize("case", by_name(CORPUS))
def test_upload_answers_each_case(server: ServerProcess, case: Case) -> None:
    response = server.post("/inference", files={"file": (case.name, case.data, "application/octet-stream")})
    assert_answer(response, case)


@pytest.mark.parametrize("case", by_name(CORPUS))
def test_file_of_the_folder_answers_each_case(server: ServerProcess, corpus_in_images_dir: str, case: Case) -> None:
    assert_answer(server.get(f"/inference/{corpus_in_images_dir}/{quote(case.name)}"), case)


def test_server_is_ready_and_never_failed_after_the_corpus(server: ServerProcess) -> None:
    assert server.get("/ready").status_code == 200
    assert server.process.poll() is None
    assert "unhandled error" not in server.log() and "Traceback" not in server.log()


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
