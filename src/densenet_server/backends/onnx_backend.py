"""The fast backend: an ONNX export of the same torchvision model, run by ONNX Runtime. Needs no PyTorch.

An export made by `densenet-server export` (or the server's own export cache) carries the identity of
its weights and the result of its verification against PyTorch in the ONNX file's metadata, so a file on
its own tells the server what it serves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..model_record import ModelRecord
from ..weights import WeightsError, WeightsInfo, file_sha256
from .base import FP32
from .registry import ONNXRUNTIME

# Keys of the ONNX file's metadata_props written by onnx_export.py.
META_WEIGHTS = "densenet_server.weights"
META_EXPORT = "densenet_server.export"
META_RECORD = "densenet_server.record"
# How exports are made; bumped whenever that changes, so cached exports of an older server are not reused.
# 2: the model's record is in the metadata.
EXPORT_FORMAT = 2
OPSET = 18
# ONNX Runtime's session option for its intra-op threads' busy-waiting between passes.
ALLOW_SPINNING = "session.intra_op.allow_spinning"


class OnnxBackend:
    name = ONNXRUNTIME.name
    precision = FP32
    device = "cpu"

    def __init__(self, model_path: Path, threads: int, lanes: int = 1, shared_lanes: bool = True) -> None:
        """``threads`` for a pass that runs alone; with ``lanes`` > 1, also that many passes on
        ``threads // lanes`` threads each, for passes that run beside each other (lane_predicts).
        ``shared_lanes=False`` gives every one-thread lane its own session (the benchmark's reference)."""
        self.model_path = model_path
        self.threads = threads
        self._session = _session(model_path, threads)
        self._lane_sessions = _lane_sessions(model_path, threads, lanes, self._session, shared_lanes)
        self.lane_predicts = [
            lambda batch, session=session: self._run(session, batch) for session in self._lane_sessions
        ]
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape_in = inputs[0].shape[1:] if len(inputs) == 1 else []
        shape_out = outputs[0].shape[1:] if len(outputs) == 1 else []
        if (
            len(shape_in) != 3 or shape_in[0] != 3 or shape_in[1] != shape_in[2] or not isinstance(shape_in[1], int)
            or len(shape_out) != 1 or not isinstance(shape_out[0], int)
        ):
            raise WeightsError(
                f"{model_path} does not take [N, 3, S, S] pixels to [N, classes] logits "
                f"(inputs {[i.shape for i in inputs]}, outputs {[o.shape for o in outputs]})"
            )
        self.input_shape: tuple[int, int, int] = (3, shape_in[1], shape_in[2])
        self.classes: int = shape_out[0]
        self._input = inputs[0].name
        self._output = outputs[0].name
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.export_info: dict[str, object] = json.loads(metadata.get(META_EXPORT, "{}"))
        self.weights = self._weights_info(model_path, metadata)
        # The record of the model it holds (None: not made by `densenet-server export`, or by an older one).
        self.record = ModelRecord.from_dict(json.loads(metadata[META_RECORD])) if META_RECORD in metadata else None

    @property
    def lanes_share_a_session(self) -> bool:
        """Whether its parallel lanes run on one session (one-thread lanes; see _lane_sessions)."""
        return len(self._lane_sessions) > 1 and all(each is self._lane_sessions[0] for each in self._lane_sessions)

    @staticmethod
    def _weights_info(model_path: Path, metadata: dict[str, str]) -> WeightsInfo:
        if META_WEIGHTS in metadata:
            return WeightsInfo.from_dict(json.loads(metadata[META_WEIGHTS]))
        # Somebody else's export: we cannot tell which weights it holds, so it never passes as published.
        sha256 = file_sha256(model_path)
        return WeightsInfo(f"onnx {model_path.name} sha256:{sha256[:16]}", False, None)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._run(self._session, batch)

    def _run(self, session: ort.InferenceSession, batch: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(batch, dtype=np.float32)
        return session.run([self._output], {self._input: inputs})[0]


def _lane_sessions(
    model_path: Path, threads: int, lanes: int, alone: ort.InferenceSession, shared: bool
) -> list[ort.InferenceSession]:
    """The session of each lane. One-thread lanes all run on one session: a session without a thread
    pool runs each run() on its caller's thread, and ONNX Runtime allows concurrent run()s, so they keep
    one copy of the weights (their optimised, prepacked form is per session: ~45 MiB each) and one arena.
    16 lanes: 707 -> 91 MiB of weights, peak 2.4 -> 1.0 GiB, same img/s (docs/performance.md). Wider
    lanes need a thread pool each, hence a session each."""
    if lanes <= 1:
        return []
    lane_threads = max(1, threads // lanes)
    if lane_threads > 1 or not shared:
        return [_session(model_path, lane_threads) for _ in range(lanes)]
    one = alone if threads == 1 else _session(model_path, 1)
    return [one] * lanes


def _session(model_path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Each session runs one graph at a time: parallelism inside operators, none between them.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No spinning: after each pass ONNX Runtime's pool threads otherwise spin, waiting for the next, on the
    # cores the fronts decode on. Measured on 2 cores (docs/performance.md, issue 18): a shufflenet server's
    # CPU per image 18-30 -> 13-16 ms, 16 clients 83-105 -> 111-118 img/s; DenseNet-121 level or better.
    options.add_session_config_entry(ALLOW_SPINNING, "0")
    try:
        return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable or invalid models
        raise WeightsError(f"{model_path} is not an ONNX model ONNX Runtime can load: {exc}") from exc
