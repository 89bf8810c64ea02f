"""GPU decoding on the serving path, on a real GPU: JPEGs a front routes are decoded by nvJPEG in the engine
and agree with the Pillow path, for DenseNet-121 and for a 14-class ResNet-18; what the route refuses gets the
CPU path's answers, and a bicubic model's JPEGs (EfficientNet-B0) never reach nvJPEG; over HTTP, a CUDA server
answers every kind of upload as a CPU server does (the same errors, the same top-1 within the measured
agreement). Skipped without CUDA (scripts/test-gpu.sh runs them); figures are printed (pytest -rP).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from support.gpu import GPU
from support.jpeg_routes import ROUTES, as_jpegs, encode, photo, with_exif_orientation
from support.paths import CAT_JPEG
from support.random_weights import write_checkpoint
from support.server_process import ServerProcess

from densenet_server.config import Settings
from densenet_server.decoding import ImageError
from densenet_server.engine.local import LocalEngine
from densenet_server.service import InferenceService

pytestmark = GPU


CudaService = tuple[InferenceService, list[list[bytes]]]


@contextlib.contextmanager
def served_on_cuda(**settings: object) -> Iterator[CudaService]:
    """The model of ``settings`` on the CUDA backend in this process (fp32, so that the decoders' difference is
    all there is), and the JPEG rows its engine decoded on the device."""
    served = Settings(device="cuda", precision="fp32", max_batch_size=64, **settings)  # type: ignore[arg-type]
    engine = LocalEngine(served)
    service = InferenceService(served, engine)
    service.load()
    decoded: list[list[bytes]] = []
    real = engine.decode_jpegs

    def recording(datas: Sequence[bytes]) -> np.ndarray:
        decoded.append(list(datas))
        return real(datas)

    engine.decode_jpegs = recording  # type: ignore[method-assign]
    try:
        yield service, decoded
    finally:
        service.stop()


@pytest.fixture(scope="module")
def cuda_service(checkpoint_path: Path) -> Iterator[CudaService]:
    """DenseNet-121 (the session's random checkpoint)."""
    with served_on_cuda(weights=checkpoint_path) as served:
        yield served


@pytest.fixture(scope="module")
def resnet_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CudaService]:
    """A fine-tuned ResNet-18 with 14 classes (bilinear, as DenseNet-121: its JPEGs take the route)."""
    weights = tmp_path_factory.mktemp("resnet18") / "resnet18-14.pth"
    write_checkpoint(weights, seed=14, architecture="resnet18", num_classes=14)
    with served_on_cuda(model="resnet18", weights=weights) as served:
        yield served


@pytest.fixture(scope="module")
def bicubic_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CudaService]:
    """EfficientNet-B0, whose weights resize bicubically."""
    weights = tmp_path_factory.mktemp("efficientnet_b0") / "efficientnet_b0.pth"
    write_checkpoint(weights, seed=15, architecture="efficientnet_b0")
    with served_on_cuda(model="efficientnet_b0", weights=weights) as served:
        yield served


def pillow_probabilities(service: InferenceService, datas: Sequence[bytes]) -> np.ndarray:
    return service.probabilities(np.stack([service.prepare(data) for data in datas]))


@pytest.mark.parametrize("which", ["cuda_service", "resnet_service"])
def test_routed_jpegs_are_decoded_by_nvjpeg_and_agree_with_pillow(
    which: str, request: pytest.FixtureRequest, photos: list[Path]
) -> None:
    service, decoded = request.getfixturevalue(which)
    assert service.info.device.startswith("cuda")
    jpegs = as_jpegs(photos[:64])
    decoded.clear()
    routed = np.concatenate([np.stack(service.image_probabilities(jpegs[i : i + 16])) for i in range(0, len(jpegs), 16)])
    assert sum(len(rows) for rows in decoded) == len(jpegs)
    assert routed.shape == (len(jpegs), service.info.record.num_classes)
    pillow = pillow_probabilities(service, jpegs)
    top1 = float((routed.argmax(1) == pillow.argmax(1)).mean())
    print(f"{service.info.record.architecture}: served nvJPEG vs Pillow, {len(jpegs)} photos, fp32: probabilities "
          f"max diff {np.abs(routed - pillow).max():.2e}, same top-1 {top1:.1%}")
    assert top1 >= 0.9  # issue 9 measured 63 of 64 on an H100 (DenseNet-121)


def test_a_bicubic_models_jpegs_never_reach_nvjpeg(bicubic_service: CudaService, photos: list[Path]) -> None:
    service, decoded = bicubic_service
    assert service.info.record.preprocessing.interpolation == "bicubic"
    jpegs = as_jpegs(photos[:16])
    decoded.clear()
    outcomes = np.stack(service.image_probabilities(jpegs))
    assert decoded == []
    # Pillow's crops through the same graphs; only the batch bucket may differ.
    pillow = pillow_probabilities(service, jpegs)
    assert np.abs(outcomes - pillow).max() <= 1e-4
    assert np.array_equal(outcomes.argmax(1), pillow.argmax(1))


@pytest.mark.parametrize("name", [name for name, (_, expected) in ROUTES.items() if expected is not None])
def test_what_the_route_refuses_takes_the_cpu_path(cuda_service: CudaService, name: str) -> None:
    service, decoded = cuda_service
    data = ROUTES[name][0]()
    decoded.clear()
    (outcome,) = service.image_probabilities([data])
    assert decoded == []
    try:
        expected = pillow_probabilities(service, [data])[0]
    except ImageError as exc:
        assert type(outcome) is type(exc) and str(outcome) == str(exc)
        return
    assert isinstance(outcome, np.ndarray)
    # The same crops through the same graphs; only the batch bucket may differ.
    assert np.abs(outcome - expected).max() <= 1e-4


@pytest.fixture(scope="module")
def servers(checkpoint_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    common = ["--weights", str(checkpoint_path), "--precision", "fp32", "--workers", "2"]
    with ServerProcess.start([*common, "--device", "cuda"]) as on_cuda, ServerProcess.start([*common, "--device", "cpu"]) as on_cpu:
        yield on_cuda, on_cpu


UPLOADS = {
    "cat.jpg": CAT_JPEG.read_bytes(),
    "photo.jpg": encode(photo(seed=5), quality=90),
    "photo.png": encode(photo(seed=6), "PNG"),
    "rotated.jpg": with_exif_orientation(6),
    "progressive.jpg": encode(photo(seed=7), progressive=True),
    "truncated.jpg": CAT_JPEG.read_bytes()[:2000],
    "text.jpg": b"this is text, not a JPEG",
}


def test_a_cuda_server_answers_uploads_as_a_cpu_server(servers: tuple[ServerProcess, ServerProcess]) -> None:
    on_cuda, on_cpu = servers
    files = [("file", (name, data, "application/octet-stream")) for name, data in UPLOADS.items()]
    for single in ("cat.jpg", "photo.png", "truncated.jpg"):
        one = {"data": UPLOADS[single], "headers": {"Content-Type": "application/octet-stream"}}
        answers = [server.post("/inference", **one) for server in servers]
        assert answers[0].status_code == answers[1].status_code, (single, answers[0].text)
        compare(answers[0].json(), answers[1].json())
    both = [server.post("/inference", files=files) for server in servers]
    assert [response.status_code for response in both] == [200, 200], both[0].text
    compare(both[0].json(), both[1].json())
    assert "Traceback" not in on_cuda.log()


def compare(on_cuda: object, on_cpu: object) -> None:
    """The same answers, errors word for word; classes within the decoders' and backends' agreement."""
    if isinstance(on_cuda, dict) and isinstance(on_cpu, dict):
        if "top_k" in on_cuda:
            assert on_cuda["device"].startswith("cuda") and on_cpu["device"] == "cpu"
            # nvJPEG and Pillow differ by a few levels (issue 9: top-1 agreed on 63 of 64 photos), so an image
            # near a tie may swap its first two classes; a wrong decoding would not keep it in the top 3.
            assert on_cpu["top_k"][0]["index"] in [entry["index"] for entry in on_cuda["top_k"][:3]]
            return
        assert on_cuda.keys() == on_cpu.keys()
        for key in on_cuda:
            compare(on_cuda[key], on_cpu[key])
    elif isinstance(on_cuda, list) and isinstance(on_cpu, list):
        assert len(on_cuda) == len(on_cpu)
        for a, b in zip(on_cuda, on_cpu):
            compare(a, b)
    else:
        assert on_cuda == on_cpu
