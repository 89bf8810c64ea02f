"""API keys on the real server (--api-keys-file): probes open, everything else behind the key through both
v2 clients, a refused request reaching no model (its metrics) and logged with its 401, keys rotated by
SIGHUP to the master without restarting the fronts, no key ever in the output, and a server that will not
start with an unusable keys file. Which route needs a key is tested in-process (tests/unit/test_access_control_inprocess.py)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import tritonclient.http as triton
from support.access_lines import access_line
from support.keyed_server import FRONTS, KEY, bearer, write_keys
from support.kserve_rest import Connection, InferAnswer, KServeChild, Tensor, health, infer
from support.paths import CAT_JPEG
from support.scraping import delta, scrape
from support.server_process import ServerProcess, free_port, server_command
from support.waiting import wait_until
from tritonclient.utils import InferenceServerException

from densenet_server.engine.launcher import ENGINE_COMMAND
from densenet_server.model_record import DEFAULT_MODEL as MODEL

CAT = CAT_JPEG.read_bytes()
NEW_KEY = "e2e-rotated-key-5b8e2d44aa"
WRONG_KEY = "e2e-wrong-key-0000000000"
RELOADED = "API keys reloaded: 1 key(s)"
NOT_RELOADED = "API keys not reloaded, the previous 1 stay in force"


@pytest.fixture
def no_key_in_the_output(keyed_server: ServerProcess) -> Iterator[None]:
    """After each test: no key, valid or not, anywhere in the server's whole output (logs and access log)."""
    yield
    output = keyed_server.log()
    for key in (KEY, NEW_KEY, WRONG_KEY):
        assert key not in output


@pytest.mark.usefixtures("no_key_in_the_output")
def test_probes_and_the_page_are_open_the_rest_needs_the_key(keyed_server: ServerProcess) -> None:
    server = keyed_server
    assert server.get("/").json()["auth"] == "bearer"
    assert server.get("/ready").status_code == 200
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    assert server.get("/ui").status_code == 200 and server.get("/static/ui/ui.js").status_code == 200
    for path in ("/inference/cat.jpg", "/metrics", "/openapi.json", "/docs", f"/v2/models/{MODEL}"):
        refused = server.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="densenet-server"'
        if path.startswith("/v2"):
            assert refused.json() == {"error": "this server needs an API key: send the header 'Authorization: Bearer <key>'"}
        else:
            assert refused.json()["error"]["code"] == "unauthorized"
        assert server.get(path, headers=bearer(KEY)).status_code == 200, path


@pytest.mark.usefixtures("no_key_in_the_output")
def test_both_v2_clients_work_with_the_key_and_are_refused_without(keyed_server: ServerProcess) -> None:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{keyed_server.port}", network_timeout=120.0)
    image = triton.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([CAT], dtype=np.object_))
    assert client.is_server_ready()  # health needs no key
    probabilities = client.infer(MODEL, [image], headers=bearer(KEY)).as_numpy("probabilities")
    assert probabilities.shape == (1, 1000)
    with pytest.raises(InferenceServerException, match="this server needs an API key"):
        client.infer(MODEL, [image])
    with pytest.raises(InferenceServerException, match="the API key was not accepted"):
        client.get_model_metadata(MODEL, headers=bearer(WRONG_KEY))
    with KServeChild() as kserve:
        keyed = Connection(keyed_server.base_url, bearer(KEY))
        assert kserve.call(health, Connection(keyed_server.base_url), MODEL) == {"live": True, "ready": True, "model_ready": True}
        answer = kserve.call(infer, keyed, MODEL, [Tensor("image", "BYTES", np.array([CAT], dtype=np.object_))], True)
        assert isinstance(answer, InferAnswer) and answer.outputs["probabilities"].shape == (1, 1000)
        refused = kserve.call(infer, Connection(keyed_server.base_url), MODEL, [Tensor("image", "BYTES", np.array([CAT], dtype=np.object_))], True)
        assert not isinstance(refused, InferAnswer) and refused.status == 401


@pytest.mark.usefixtures("no_key_in_the_output")
def test_a_refused_request_reaches_no_model_and_is_logged_with_its_401(keyed_server: ServerProcess) -> None:
    server = keyed_server
    before = scrape(server, bearer(KEY))
    refused = {
        "refused-get": server.get("/inference/cat.jpg", headers={"X-Request-ID": "refused-get"}),
        "refused-upload": server.post("/inference", data=CAT, headers={"Content-Type": "image/jpeg", "X-Request-ID": "refused-upload", **bearer(WRONG_KEY)}),
        "refused-v2": server.post(f"/v2/models/{MODEL}/infer", data=b"{}", headers={"X-Request-ID": "refused-v2", **bearer(WRONG_KEY)}),
    }
    after = scrape(server, bearer(KEY))
    assert [response.status_code for response in refused.values()] == [401] * 3
    for name in ("densenet_images_classified_total", "densenet_inference_batch_size_count", "densenet_stage_duration_seconds_count"):
        for labels in ({"model": MODEL}, {"model": MODEL, "stage": "preprocess"}, {"model": MODEL, "stage": "batcher"}):
            assert delta(before, after, name, **labels) == 0, (name, labels)
    # Counted as HTTP requests, though: a burst of 401s is worth an alert.
    assert delta(before, after, "densenet_http_requests_total", method="GET", route="/inference/<path:filename>", status="401") == 1
    assert delta(before, after, "densenet_http_requests_total", method="POST", route="/inference", status="401") == 1
    for request_id, response in refused.items():
        line = access_line(server.log(), request_id)
        assert (line["status"], line["images"], line["batch_size"]) == (401, 0, None)
        assert response.headers["X-Request-ID"] == request_id


def front_pids(server: ServerProcess) -> set[int]:
    return {child.pid for child in psutil.Process(server.process.pid).children() if ENGINE_COMMAND not in child.cmdline()}


def send_sighup_and_wait(server: ServerProcess, line: str) -> None:
    """SIGHUP to the master; returns once the master and every front have logged ``line``."""
    mark = server.log_mark()
    os.kill(server.process.pid, signal.SIGHUP)
    wait_until(lambda: server.log_since(mark).count(line) == FRONTS + 1, f"{FRONTS + 1} lines '{line}'", timeout_s=30)


@pytest.mark.usefixtures("no_key_in_the_output")
def grpc_metadata_allowed(server: ServerProcess, key: str) -> bool:
    """Whether the gRPC side (each front's, sharing its keys with the HTTP side) takes ``key``."""
    import tritonclient.grpc as triton_grpc

    assert server.grpc_address is not None
    try:
        triton_grpc.InferenceServerClient(server.grpc_address).get_model_metadata(MODEL, headers={"authorization": f"Bearer {key}"})  # gRPC: lower case
    except InferenceServerException as exc:
        assert "UNAUTHENTICATED" in str(exc.status()), exc
        return False
    return True


def test_sighup_rotates_the_keys_without_restarting_the_fronts(keyed_server: ServerProcess, keys_file: Path) -> None:
    server = keyed_server
    fronts = front_pids(server)
    assert len(fronts) == FRONTS
    assert grpc_metadata_allowed(server, KEY) and not grpc_metadata_allowed(server, NEW_KEY)
    try:
        write_keys(keys_file, "# rotated", NEW_KEY)
        send_sighup_and_wait(server, RELOADED)
        # Enough requests that both fronts answer some (each re-read the file: its own log line above).
        for _ in range(8):
            assert server.get("/inference/cat.jpg", headers=bearer(NEW_KEY)).status_code == 200
            old = server.get("/inference/cat.jpg", headers=bearer(KEY))
            assert old.status_code == 401 and 'error="invalid_token"' in old.headers["WWW-Authenticate"]
            assert grpc_metadata_allowed(server, NEW_KEY) and not grpc_metadata_allowed(server, KEY)
        # A file that has become unusable (emptied mid-edit, say) keeps the keys in force, with an error.
        keys_file.write_text("")
        send_sighup_and_wait(server, NOT_RELOADED)
        assert server.get("/inference/cat.jpg", headers=bearer(NEW_KEY)).status_code == 200
        assert front_pids(server) == fronts  # the same processes: rotated, not restarted
        server.assert_healthy_since(0)
    finally:
        write_keys(keys_file, KEY)
        send_sighup_and_wait(server, RELOADED)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the API keys file"),
        ("# only a comment\n", "holds no key"),
        ("short-key\n", "key(s) number 1 are shorter than 16 characters"),
    ],
    ids=["missing", "no-key", "short-key"],
)
def test_an_unusable_keys_file_stops_the_server_at_start(
    checkpoint_path: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "keys"
    if content is not None:
        path.write_text(content)
    command = [*server_command(), "serve", "--weights", str(checkpoint_path), "--host", "127.0.0.1", "--port", str(free_port()),
               "--api-keys-file", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and str(path) in result.stderr
    assert "short-key" not in result.stderr + result.stdout  # never the key itself
    assert "serving" not in result.stderr and "Booting worker" not in result.stderr  # nothing started
