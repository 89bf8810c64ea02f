"""TLS on the server's own ports (--certfile/--keyfile), with a self-signed certificate for 127.0.0.1 made
at test time: HTTPS answers a client that trusts it, a client that does not refuses the server, plain HTTP
to the port gets no answer, gRPC speaks TLS too, and a certificate with the wrong key stops the server at
start (exit 2). The certificate and key checks themselves: tests/unit/test_tls_files.py."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from support.certificates import Certificate, self_signed
from support.kserve_rest import Connection, InferAnswer, KServeChild, Tensor, health, infer
from support.paths import CAT_JPEG
from support.server_process import ServerProcess, free_port, server_command
from support.waiting import wait_until
from tritonclient.utils import InferenceServerException

from densenet_server.model_record import DEFAULT_MODEL as MODEL

CAT = CAT_JPEG.read_bytes()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


def https(server: ServerProcess, path: str) -> str:
    return f"https://127.0.0.1:{server.port}{path}"


def trusting(certificate: Certificate) -> ssl.SSLContext:
    """A client's TLS context that trusts the self-signed ``certificate`` (its own CA)."""
    return ssl.create_default_context(cafile=str(certificate.certfile))


@pytest.fixture(scope="module")
def tls_server(checkpoint_path: Path, images_dir: Path, certificate: Certificate) -> Iterator[ServerProcess]:
    args = ["--weights", str(checkpoint_path), "--images-dir", str(images_dir),
            "--certfile", str(certificate.certfile), "--keyfile", str(certificate.keyfile)]
    # start()'s own wait speaks plain HTTP: wait here, over HTTPS.
    with ServerProcess.start(args, wait_ready=False) as server:

        def ready() -> bool:
            assert server.process.poll() is None, server.log()
            try:
                return httpx.get(https(server, "/ready"), verify=trusting(certificate), timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "the TLS server ready over HTTPS", timeout_s=120)
        yield server


def test_https_answers_a_client_that_trusts_the_certificate(tls_server: ServerProcess, certificate: Certificate) -> None:
    with httpx.Client(verify=trusting(certificate), timeout=60) as client:
        answer = client.get(https(tls_server, "/inference/cat.jpg"))
        assert answer.status_code == 200 and answer.json()["model"] == MODEL
        upload = client.post(https(tls_server, "/inference"), content=CAT, headers={"Content-Type": "image/jpeg"})
        assert upload.json()["class"] == answer.json()["class"]


def test_a_client_that_does_not_trust_it_refuses_the_server(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https(tls_server, "/ready"), timeout=10)  # the system's CAs only


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server: ServerProcess, certificate: Certificate) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/ready", timeout=10)
    # The failed handshake did no harm.
    assert httpx.get(https(tls_server, "/ready"), verify=trusting(certificate), timeout=10).status_code == 200
    assert tls_server.process.poll() is None


def test_kserves_client_over_https(tls_server: ServerProcess, certificate: Certificate) -> None:
    connection = Connection(https(tls_server, ""), verify=str(certificate.certfile))
    with KServeChild() as kserve:
        assert kserve.call(health, connection, MODEL) == {"live": True, "ready": True, "model_ready": True}
        answer = kserve.call(infer, connection, MODEL, [Tensor("image", "BYTES", np.array([CAT], dtype=np.object_))], True)
    assert isinstance(answer, InferAnswer) and answer.outputs["probabilities"].shape == (1, 1000)


def test_grpc_speaks_tls_with_the_same_certificate(tls_server: ServerProcess, certificate: Certificate) -> None:
    import tritonclient.grpc as triton_grpc

    assert tls_server.grpc_address is not None
    client = triton_grpc.InferenceServerClient(
        tls_server.grpc_address, ssl=True, root_certificates=str(certificate.certfile)
    )
    assert client.is_server_ready()
    image = triton_grpc.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([CAT], dtype=np.object_))
    assert client.infer(MODEL, [image]).as_numpy("probabilities").shape == (1, 1000)
    plain = triton_grpc.InferenceServerClient(tls_server.grpc_address)
    with pytest.raises(InferenceServerException, match="UNAVAILABLE"):
        plain.is_server_ready(client_timeout=10)


def test_a_key_that_is_not_the_certificates_stops_the_server_at_start(
    checkpoint_path: Path, certificate: Certificate, tmp_path: Path
) -> None:
    other = self_signed(tmp_path, "other")
    command = [*server_command(), "serve", "--weights", str(checkpoint_path), "--host", "127.0.0.1", "--port", str(free_port()),
               "--certfile", str(certificate.certfile), "--keyfile", str(other.keyfile)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "KEY_VALUES_MISMATCH" in result.stderr and str(other.keyfile) in result.stderr
    key_body = other.keyfile.read_text().splitlines()[1]
    assert key_body not in result.stderr + result.stdout
    # Half a pair is refused before anything is read.
    half = subprocess.run([*server_command(), "serve", "--certfile", str(certificate.certfile)], capture_output=True, text=True, timeout=60)
    assert half.returncode == 2 and "give both certfile and keyfile (TLS), or neither" in half.stderr
