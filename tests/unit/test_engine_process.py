"""An HTTP front's RemoteEngine and the engine process's EngineServer, over a real Unix socket.

The engine side runs in this process on a real Batcher; its model is a stand-in whose logits are a known
function of the pixels, so that every answer can be checked exactly, and which can be held at a gate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from densenet_server.batching import Batcher, BatcherStopped, DeadlineExceeded, QueueFull
from densenet_server.engine.base import EngineUnavailable, ModelInfo
from densenet_server.engine.client import RemoteEngine
from densenet_server.engine.paths import RunPaths
from densenet_server.engine.process import EngineServer
from densenet_server.engine.shared_state import SharedState, write_json
from densenet_server.model_record import DENSENET121, SIGMOID, ModelRecord, Preprocessing
from densenet_server.preprocess import normalize
from densenet_server.weights import WeightsInfo, unpublished_weights_info

WEIGHTS = WeightsInfo("file x sha256:00", False, "00" * 32)
INFO = ModelInfo(DENSENET121, WEIGHTS, "stand-in", "fp32", "cpu")
PREPROCESSING = DENSENET121.preprocessing
CROP_SHAPE, INPUT_SHAPE = PREPROCESSING.crop_shape, PREPROCESSING.input_shape
QUEUE = 8


def logits_of(pixels: np.ndarray) -> np.ndarray:
    """The stand-in model: per image, its mean value per channel, then zeros up to 1000 classes."""
    means = pixels.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
    return np.pad(means, ((0, 0), (0, 997)))


@dataclass
class StandInEngine:
    """What EngineServer needs of LocalEngine: whether it is loaded, and its batcher."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    batcher: Batcher = field(init=False)
    loaded: bool = True
    info: ModelInfo = INFO

    def __post_init__(self) -> None:
        self.gate.set()

        def predict(pixels: np.ndarray) -> np.ndarray:
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
            return logits_of(pixels)

        self.batcher = Batcher(predict, max_batch_size=4, max_wait_s=0.0, max_queue_images=QUEUE)


def start(folder: Path, info: ModelInfo = INFO) -> tuple[StandInEngine, EngineServer, RemoteEngine, SharedState]:
    """An engine server on a stand-in engine, published as ready, and a front connected to it."""
    paths = RunPaths(folder)
    state = SharedState.create(paths.state, QUEUE)
    engine = StandInEngine(info=info)
    server = EngineServer(engine, paths)  # type: ignore[arg-type]
    write_json(paths.model_info, {"model": info.to_dict(), "layout": {}})
    state.set_ready()
    front = RemoteEngine(paths)
    front.load()
    return engine, server, front, state


@pytest.fixture
def engine_and_front(tmp_path: Path) -> Iterator[tuple[StandInEngine, RemoteEngine, SharedState]]:
    engine, server, front, state = start(tmp_path)
    yield engine, front, state
    engine.gate.set()
    front.stop(1.0)
    engine.batcher.stop(5.0)
    server.close()


def crops(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *CROP_SHAPE), dtype=np.uint8)


def test_the_front_learns_what_the_engine_serves(engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState]) -> None:
    _, front, _ = engine_and_front
    assert front.loaded and front.info == INFO


def test_another_models_record_reaches_the_front_and_sizes_its_rows(tmp_path: Path) -> None:
    """A fine-tuned model with 240-pixel crops, labels of its own and sigmoid outputs: the front learns
    all of it, and the engine reads and normalises the rows by that record."""
    preprocessing = Preprocessing(255, 240, "bicubic", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    record = ModelRecord(
        "xray", "efficientnet_b1", preprocessing, ("a", "b", "c"), output=SIGMOID, threshold=0.3,
        published_categories=False,
    )
    info = ModelInfo(record, unpublished_weights_info(record, "file x", "00" * 32), "stand-in", "fp32", "cpu")
    engine, server, front, _ = start(tmp_path, info)
    try:
        assert front.info == info
        rows = np.random.default_rng(4).integers(0, 256, (2, *preprocessing.crop_shape), dtype=np.uint8)
        assert np.array_equal(front.run(rows, timeout_s=10).logits, logits_of(normalize(rows, preprocessing)))
        with pytest.raises(ValueError, match=r"^expected uint8 crops \[N, 240, 240, 3\] or float32 pixels \[N, 3, 240, 240\], got uint8 \[1, 224, 224, 3\]$"):
            front.run(crops(1), timeout_s=10)
    finally:
        front.stop(1.0)
        engine.batcher.stop(5.0)
        server.close()


def test_crops_are_normalised_by_the_engine_exactly_as_in_process(
    engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState],
) -> None:
    _, front, _ = engine_and_front
    rows = crops(3)
    completed = front.run(rows, timeout_s=10)
    assert np.array_equal(completed.logits, logits_of(normalize(rows, PREPROCESSING)))
    assert completed.batch_size == 3


def test_float32_pixels_pass_through(engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState]) -> None:
    _, front, _ = engine_and_front
    pixels = np.random.default_rng(1).normal(size=(2, *INPUT_SHAPE)).astype(np.float32)
    assert np.array_equal(front.run(pixels, timeout_s=10).logits, logits_of(pixels))


def test_answers_reach_the_thread_that_asked(engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState]) -> None:
    _, front, _ = engine_and_front
    results: dict[int, np.ndarray] = {}

    def ask(seed: int) -> None:
        results[seed] = front.run(crops(1, seed), timeout_s=20).logits

    threads = [threading.Thread(target=ask, args=(seed,)) for seed in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == list(range(12))
    for seed, logits in results.items():
        assert np.array_equal(logits, logits_of(normalize(crops(1, seed), PREPROCESSING)))


def test_a_full_queue_is_refused_with_a_retry_hint(engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState]) -> None:
    engine, front, state = engine_and_front
    engine.gate.clear()
    held = threading.Thread(target=front.run, args=(crops(4), 20))
    held.start()
    assert engine.entered.wait(10)
    # The running batch has left the queue: fill the queue, then one image more is refused.
    filling = threading.Thread(target=front.run, args=(crops(QUEUE), 20))
    filling.start()
    deadline = threading.Event()
    while engine.batcher.queued_images < QUEUE and not deadline.wait(0.01):
        pass
    with pytest.raises(QueueFull, match="the inference queue is full") as refused:
        front.run(crops(1), timeout_s=5)
    assert refused.value.retry_after_s >= 1
    engine.gate.set()
    held.join(10)
    filling.join(10)


def test_ensure_room_reads_the_published_queue(engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState]) -> None:
    _, front, state = engine_and_front
    front.ensure_room(QUEUE)
    state.set_queue(QUEUE - 1, 4)
    front.ensure_room(1)
    with pytest.raises(QueueFull, match=f"{QUEUE - 1} of {QUEUE} images waiting") as refused:
        front.ensure_room(2)
    assert refused.value.retry_after_s == 4


def test_a_deadline_gives_up_and_the_engine_skips_the_abandoned_request(
    engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState],
) -> None:
    engine, front, _ = engine_and_front
    engine.gate.clear()
    held = threading.Thread(target=front.run, args=(crops(4), 20))
    held.start()
    assert engine.entered.wait(10)
    with pytest.raises(DeadlineExceeded, match="did not finish before the request's deadline"):
        front.run(crops(1, seed=5), timeout_s=0.3)
    engine.gate.set()
    held.join(10)
    # The engine and the connection still work, and the cancelled request left nothing queued.
    assert np.array_equal(front.run(crops(1, 6), timeout_s=10).logits, logits_of(normalize(crops(1, 6), PREPROCESSING)))
    assert engine.batcher.queued_images == 0


def test_a_stopped_engine_refuses_new_work(engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState]) -> None:
    engine, front, _ = engine_and_front
    engine.batcher.stop(5.0)
    with pytest.raises(BatcherStopped, match="shutting down"):
        front.run(crops(1), timeout_s=5)


def test_a_lost_engine_fails_the_waiting_requests(tmp_path: Path) -> None:
    engine, server, front, _ = start(tmp_path)
    engine.gate.clear()
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            front.run(crops(1), timeout_s=20)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            failures.append(exc)

    waiting = threading.Thread(target=ask)
    waiting.start()
    assert engine.entered.wait(10)
    server.close()  # hangs up on the front, as the kernel does when the engine process dies
    waiting.join(10)
    assert len(failures) == 1 and isinstance(failures[0], EngineUnavailable)
    assert not front.loaded
    engine.gate.set()
    engine.batcher.stop(5.0)


def test_a_failed_engine_makes_the_front_give_up(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    SharedState.create(paths.state, QUEUE).set_failed()
    with pytest.raises(EngineUnavailable, match="could not load the model"):
        RemoteEngine(paths).load()


def test_announcements_end_with_their_requests_also_when_nested(
    engine_and_front: tuple[StandInEngine, RemoteEngine, SharedState],
) -> None:
    """An announcement left behind would make every later batch wait for images that never come."""
    engine, front, _ = engine_and_front
    with front.expecting(2):
        with front.expecting(1):
            front.run(crops(1), timeout_s=10)
        front.run(crops(2), timeout_s=10)
    with front.expecting(3):
        pass  # announced, never sent
    front.run(crops(1), timeout_s=10)  # a round trip after the CANCELs, which the engine reads in order
    assert engine.batcher.incoming_images == 0
