"""The gRPC server's TLS seam: with a certificate and its key (PEM bytes, tls.PemPair) it speaks TLS only.
A certificate made at test time (support/certificates.py), the session's loaded model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton
from support.certificates import self_signed
from support.paths import REPO_IMAGES
from tritonclient.utils import InferenceServerException

from densenet_server.grpc_v2.server import start_grpc_server
from densenet_server.served_models import ServedModels
from densenet_server.service import InferenceService
from densenet_server.tls import PemPair

CAT = (REPO_IMAGES / "cat.jpg").read_bytes()


def test_with_a_certificate_it_speaks_tls_only(inference_service: InferenceService, tmp_path: Path) -> None:
    certificate = self_signed(tmp_path)
    pem = PemPair(certificate.certfile.read_bytes(), certificate.keyfile.read_bytes())
    server = start_grpc_server(ServedModels([inference_service]), "127.0.0.1", 0, tls=pem)
    try:
        address = f"127.0.0.1:{server.port}"
        secure = triton.InferenceServerClient(address, ssl=True, root_certificates=str(certificate.certfile))
        assert secure.is_server_live()
        assert secure.infer("densenet121", [cat()]).as_numpy("probabilities").shape == (1, 1000)
        plain = triton.InferenceServerClient(address)
        with pytest.raises(InferenceServerException) as refused:
            plain.is_server_live()
        assert refused.value.status() == "StatusCode.UNAVAILABLE"
    finally:
        server.stop(5)


def cat() -> triton.InferInput:
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([CAT], dtype=np.object_))
    return tensor
