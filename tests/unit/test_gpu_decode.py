"""GPU decoding's building blocks on the CPU: which images may go to nvJPEG (a table of generated images), the
JPEG header reader, and the batched decode + resize + crop + normalise against the Pillow path, for DenseNet's
preprocessing and another model's (its own sizes, mean and std); models whose resize is not bilinear never go.

On the CPU device torchvision decodes with its own libjpeg, not nvJPEG; tests/gpu measures nvJPEG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support.jpeg_routes import BASELINE, LIMIT, ROUTES, as_jpegs, encode, mpo, photo, route_limit, with_exif_orientation

from densenet_server import gpu_decode
from densenet_server.decoding import ImageError, InvalidImage, decode_image
from densenet_server.gpu_decode import cpu_reason, decode_batch, decode_crops, nvjpeg_can_decode, prepare_batch
from densenet_server.jpeg_header import read_jpeg_header
from densenet_server.model_record import DENSENET121, INTERPOLATIONS, Preprocessing
from densenet_server.nvjpeg_route import within_size_limits
from densenet_server.preprocess import preprocess

DENSENET = DENSENET121.preprocessing
# Another model's preprocessing, bilinear (as efficientnet_b1's: resize 255, crop 240), with a mean and std of
# its own, so that neither DenseNet's sizes nor ImageNet's statistics could pass for it.
OTHER = Preprocessing(255, 240, "bilinear", (0.5, 0.4, 0.3), (0.2, 0.3, 0.4))
NOT_BILINEAR = [name for name in INTERPOLATIONS if name != "bilinear"]


def levels(a: np.ndarray, b: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """Differences of normalised inputs [..., 3, crop, crop], in 8-bit pixel levels."""
    return np.abs(a - b) * np.array(preprocessing.std, dtype=np.float32).reshape(3, 1, 1) * 255


def pillow_inputs(datas: list[bytes], preprocessing: Preprocessing) -> np.ndarray:
    return np.stack([preprocess(decode_image(data, LIMIT), preprocessing) for data in datas])


@pytest.mark.parametrize("name", list(ROUTES))
def test_route(name: str) -> None:
    make, expected = ROUTES[name]
    data = make()
    limit = route_limit(name)
    reason = cpu_reason(data, limit, DENSENET)
    if expected is None:
        assert reason is None
        assert nvjpeg_can_decode(data, limit, DENSENET)
    else:
        assert reason is not None and expected in reason, reason
        assert not nvjpeg_can_decode(data, limit, DENSENET)


@pytest.mark.parametrize("interpolation", NOT_BILINEAR)
def test_a_model_resized_with_another_filter_never_takes_the_device_route(interpolation: str) -> None:
    """torchvision's tensor resize was measured against Pillow's for bilinear only (bicubic: efficientnet_b0)."""
    preprocessing = Preprocessing(256, 224, interpolation, DENSENET.mean, DENSENET.std)
    for make, _ in ROUTES.values():
        reason = cpu_reason(make(), LIMIT, preprocessing)
        assert reason is not None and interpolation in reason, reason
    assert not nvjpeg_can_decode(BASELINE, LIMIT, preprocessing)
    with pytest.raises(ValueError, match=f"{interpolation} resizing is done by Pillow only"):
        decode_crops([BASELINE], "cpu", preprocessing)  # nor does the device prepare them if asked


def test_the_long_and_thin_rule_reads_the_models_resize_size() -> None:
    """4x4000 resized to a short side of 256 is 65.5 Mpixels, over the full-resize limit; to 16, 0.26 Mpixels."""
    long_and_thin = encode(photo(4, 4000))
    small = Preprocessing(16, 16, "bilinear", DENSENET.mean, DENSENET.std)
    assert "long and thin" in (cpu_reason(long_and_thin, LIMIT, DENSENET) or "")
    assert not within_size_limits(long_and_thin, LIMIT, DENSENET)
    assert cpu_reason(long_and_thin, LIMIT, small) is None
    assert within_size_limits(long_and_thin, LIMIT, small)


@pytest.mark.parametrize("name", [name for name, (_, expected) in ROUTES.items() if expected is None])
def test_what_goes_to_the_gpu_decodes_as_pillow_decodes_it(name: str) -> None:
    """Here on the CPU device (libjpeg); a route that let through a rotated or RGB-coded image would fail."""
    data = ROUTES[name][0]()
    ours = decode_batch([data], "cpu", DENSENET)[0].numpy()
    assert levels(ours, pillow_inputs([data], DENSENET)[0], DENSENET).max() <= 3.0


def test_the_header_reader() -> None:
    header = read_jpeg_header(BASELINE)
    assert header is not None
    assert (header.sof, header.bits, header.width, header.height) == (0xC0, 8, 400, 300)
    assert [(c.id, c.h, c.v) for c in header.components] == [(1, 2, 2), (2, 1, 1), (3, 1, 1)]
    assert header.adobe_transform is None and not header.multi_picture and header.ends_with_eoi
    assert read_jpeg_header(encode(photo(), progressive=True)).sof == 0xC2
    assert read_jpeg_header(encode(photo().convert("CMYK"))).adobe_transform is not None
    assert read_jpeg_header(mpo()).multi_picture
    for broken in (b"", b"\xff\xd8", b"\xff\xd8\xff", b"\xff\xd8\x00\x00", BASELINE[:20], b"\x89PNG\r\n\x1a\n"):
        assert read_jpeg_header(broken) is None


def test_the_batched_transform_agrees_with_the_pillow_path(photos: list[Path]) -> None:
    jpegs = as_jpegs(photos[:48])
    batch = decode_batch(jpegs, "cpu", DENSENET)
    assert batch.shape == (len(jpegs), 3, 224, 224) and batch.dtype == torch.float32
    apart = levels(batch.numpy(), pillow_inputs(jpegs, DENSENET), DENSENET)
    # torchvision's libjpeg and resize against Pillow's: on the 200 shared photos (2026-11-25, CPU) at most
    # 1 level apart, mean 0.0016 levels; the bounds leave room for other builds of either library.
    assert apart.max() <= 2.0
    assert apart.mean() <= 0.02


def test_another_models_sizes_mean_and_std_are_its_own(photos: list[Path]) -> None:
    jpegs = as_jpegs(photos[:16])
    batch = decode_batch(jpegs, "cpu", OTHER)
    assert batch.shape == (len(jpegs), 3, 240, 240) and batch.dtype == torch.float32
    apart = levels(batch.numpy(), pillow_inputs(jpegs, OTHER), OTHER)
    # Measured (2026-11-25, CPU, the first 16 shared photos): at most 1 level apart, mean 0.0009; bounds as above.
    assert apart.max() <= 2.0 and apart.mean() <= 0.02
    crops = gpu_decode.host_crops(jpegs[:2], "cpu", OTHER)
    assert crops.shape == (2, 240, 240, 3) and crops.dtype == np.uint8


def test_prepare_batch_routes_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    good = [encode(photo(seed=s), quality=90) for s in (1, 2)]
    png = encode(photo(seed=3), "PNG")
    rotated = with_exif_orientation(6)
    truncated = good[0][: len(good[0]) // 2]
    cpu_calls: list[bytes] = []

    def cpu_prepare(data: bytes) -> np.ndarray:
        cpu_calls.append(data)
        return preprocess(decode_image(data, LIMIT), DENSENET)

    datas = [good[0], png, truncated, good[1], rotated, b"not an image"]
    results = prepare_batch(datas, "cpu", LIMIT, cpu_prepare, DENSENET)
    assert len(results) == len(datas)
    assert cpu_calls == [png, truncated, rotated, b"not an image"]  # the JPEGs went to the device decoder
    on_device = decode_batch([good[0], good[1]], "cpu", DENSENET)
    assert torch.equal(results[0], on_device[0]) and torch.equal(results[3], on_device[1])
    assert np.array_equal(results[1].numpy(), cpu_prepare(png))
    assert np.array_equal(results[4].numpy(), cpu_prepare(rotated))  # rotated by the CPU path, as today
    assert isinstance(results[2], InvalidImage) and isinstance(results[5], InvalidImage)


def test_an_image_the_device_decoder_refuses_gets_the_cpu_paths_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    good = encode(photo(seed=1), quality=90)
    refused = encode(photo(seed=2), quality=90)
    real_decode_batch = gpu_decode.decode_batch

    def failing_decode(datas: list[bytes], device: str, preprocessing: Preprocessing) -> torch.Tensor:
        if refused in datas:
            raise RuntimeError("nvjpeg says no")
        return real_decode_batch(datas, device, preprocessing)

    def cpu_prepare(data: bytes) -> np.ndarray:
        if data == refused:
            raise InvalidImage("the image data is truncated or corrupt")
        return preprocess(decode_image(data, LIMIT), DENSENET)

    monkeypatch.setattr(gpu_decode, "decode_batch", failing_decode)
    first, second = prepare_batch([good, refused], "cpu", LIMIT, cpu_prepare, DENSENET)
    assert torch.equal(first, real_decode_batch([good], "cpu", DENSENET)[0])  # retried alone after the batch failed
    assert isinstance(second, ImageError)
