"""A model exported by `densenet-server export` served by LitServe (0.2.19), the peer of scripts/bench-litserve.sh.

    PYTHONPATH=src python scripts/litserve_peer_server.py --onnx model.onnx [--port 8000]
        [--workers N] [--ort-threads T] [--max-batch-size B] [--batch-timeout-ms MS]

Any model: the export's metadata carries its record (categories, resize, crop, mean and std), which this
file reads as densenet-server does. Written the way LitServe's batched-API pattern goes: `decode_request`
decodes one upload (Pillow, then the record's resize / centre crop / normalisation, with densenet-server's
own code imported from its src),
LitServe gathers up to --max-batch-size decoded requests within --batch-timeout-ms, `batch` stacks them,
`predict` runs ONNX Runtime on the ONNX export of `densenet-server export`, `unbatch` splits the logits
and `encode_response` answers the top 5 classes. --workers inference processes (LitServe's
workers_per_device on the CPU; 0: one per usable CPU), each with its own ONNX Runtime session of
--ort-threads threads; LitServe starts as many HTTP (uvicorn) processes as inference workers.

The route is LitServe's default, POST /predict. LitServe parses a request body as JSON unless it is a
form, and hands files to decode_request as multipart form fields; so the upload is the multipart field
`file`, and a bare image body (Content-Type image/*, what scripts/bench_peer.py sends to every server)
is wrapped into that one-field form by a small ASGI middleware before LitServe parses it. Needs
litserve, onnxruntime, numpy, pillow and python-multipart; no torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

try:
    from densenet_server.decoding import ImageError, decode_image
except ImportError:  # run without PYTHONPATH=src: use this checkout's src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from densenet_server.decoding import ImageError, decode_image

import litserve as ls
import numpy as np
import onnxruntime as ort
from densenet_server.backends.onnx_backend import META_RECORD
from densenet_server.cpus import usable_cpus
from densenet_server.model_record import ModelRecord
from densenet_server.postprocess import probabilities, top_k
from densenet_server.preprocess import preprocess
from fastapi import HTTPException

TOP_K = 5
MAX_IMAGE_PIXELS = 40_000_000  # densenet-server's default --max-image-pixels
UPLOAD_FIELD = "file"


class DenseNetAPI(ls.LitAPI):
    def __init__(self, onnx_path: str, ort_threads: int, max_batch_size: int, batch_timeout_s: float) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout_s)
        self.onnx_path = onnx_path
        self.ort_threads = ort_threads

    def setup(self, device: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.ort_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(self.onnx_path, options, providers=["CPUExecutionProvider"])
        self.record = ModelRecord.from_dict(json.loads(self.session.get_modelmeta().custom_metadata_map[META_RECORD]))
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def decode_request(self, request):
        upload = request.get(UPLOAD_FIELD) if hasattr(request, "get") else None
        if upload is None or not hasattr(upload, "file"):
            raise HTTPException(400, f"send the image as the multipart field '{UPLOAD_FIELD}' or as the raw body")
        try:
            # An error here fails the whole batch it was gathered into: LitServe's batched loop decodes a
            # batch's requests one after another and answers them together.
            return preprocess(decode_image(upload.file.read(), MAX_IMAGE_PIXELS), self.record.preprocessing)
        except ImageError as exc:
            raise HTTPException(400, str(exc)) from exc

    def batch(self, inputs):
        return np.stack(inputs)

    def predict(self, x):
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def unbatch(self, output):
        return list(output)

    def encode_response(self, output):
        return {"predictions": top_k(probabilities(output[None], self.record)[0], TOP_K, self.record.categories)}


class RawImageBodyAsForm:
    """ASGI middleware: a POST whose body is a bare image (Content-Type image/*) reaches LitServe as a
    multipart form with that image as its one field, `file`; every other request passes untouched."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = [(name, value) for name, value in scope["headers"]]
        content_type = next((value for name, value in headers if name == b"content-type"), b"")
        if not content_type.lower().startswith(b"image/"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        boundary = uuid.uuid4().hex.encode()
        form = b"".join(
            [
                b"--" + boundary + b"\r\n",
                b'Content-Disposition: form-data; name="' + UPLOAD_FIELD.encode() + b'"; filename="upload"\r\n',
                b"Content-Type: " + content_type + b"\r\n\r\n",
                *chunks,
                b"\r\n--" + boundary + b"--\r\n",
            ]
        )
        kept = [(name, value) for name, value in headers if name not in (b"content-type", b"content-length")]
        kept += [
            (b"content-type", b"multipart/form-data; boundary=" + boundary),
            (b"content-length", str(len(form)).encode()),
        ]
        delivered = False

        async def receive_form():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": form, "more_body": False}

        await self.app({**scope, "headers": kept}, receive_form, send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", required=True, help="the ONNX file of `densenet-server export`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=0, help="inference processes (0: one per usable CPU)")
    parser.add_argument("--ort-threads", type=int, default=1, help="ONNX Runtime intra-op threads per worker")
    parser.add_argument("--max-batch-size", type=int, default=4)
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0)
    parser.add_argument("--api-servers", type=int, default=0, help="HTTP processes (0: LitServe's default, one per worker)")
    args = parser.parse_args()

    workers = args.workers or usable_cpus().count
    api = DenseNetAPI(os.path.abspath(args.onnx), args.ort_threads, args.max_batch_size, args.batch_timeout_ms / 1000)
    server = ls.LitServer(
        api, accelerator="cpu", devices=1, workers_per_device=workers, middlewares=[RawImageBodyAsForm]
    )
    print(
        f"LitServe {ls.__version__}: {workers} worker(s) x {args.ort_threads} ORT thread(s), "
        f"batch {args.max_batch_size}, {args.batch_timeout_ms:g} ms, onnxruntime {ort.__version__}",
        flush=True,
    )
    server.run(
        host=args.host,
        port=args.port,
        num_api_servers=args.api_servers or None,
        log_level="warning",
        generate_client_file=False,
    )


if __name__ == "__main__":
    main()
