"""The side-by-side benchmark scripts against peer servers (scripts/bench-*.sh) stay runnable.

TorchServe needs a Java runtime and its own environment, which the test suite does not install: here the
shell scripts only have to parse, and the peer server files and bench_peer.py to compile. LitServe's side
runs for real in tests/e2e/test_bench_litserve.py (the test extra pins litserve).
"""

from __future__ import annotations

import py_compile
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")


@pytest.mark.skipif(BASH is None, reason="no bash")
@pytest.mark.parametrize("script", ["scripts/bench-litserve.sh", "scripts/bench-torchserve.sh"])
def test_peer_bench_script_is_valid_bash(script: str) -> None:
    subprocess.run([BASH, "-n", str(ROOT / script)], check=True)


@pytest.mark.parametrize("source", ["scripts/litserve_peer_server.py", "scripts/bench_peer.py"])
def test_peer_python_files_compile(source: str, tmp_path: Path) -> None:
    py_compile.compile(str(ROOT / source), cfile=str(tmp_path / "compiled.pyc"), doraise=True)


def test_litserve_script_serves_the_peer_file_from_its_own_venv_with_the_pinned_litserve() -> None:
    script = (ROOT / "scripts/bench-litserve.sh").read_text()
    assert "litserve==0.2.19" in script
    assert "${LITSERVE_VENV:-/tmp/litserve-venv}" in script
    assert "scripts/litserve_peer_server.py" in script
    assert "densenet-server export" in script  # the same ONNX export as our server's
    assert "scripts/bench_peer.py" in script
    assert "--pause-peer" in script  # LitServe's idle workers poll: stopped while ours is driven


def test_bench_peer_stops_the_peer_tree_while_ours_is_driven_and_continues_it() -> None:
    import importlib.util

    import psutil

    spec = importlib.util.spec_from_file_location("bench_peer", ROOT / "scripts/bench_peer.py")
    assert spec is not None and spec.loader is not None
    bench_peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_peer)
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"]
    )
    try:
        top = psutil.Process(parent.pid)
        for _ in range(100):
            if top.children():
                break
            time.sleep(0.05)
        tree = [top, *top.children(recursive=True)]
        assert len(tree) == 2

        def statuses_settle(wanted) -> set[str]:
            # Signals arrive asynchronously: give the kernel a moment to change the processes' states.
            for _ in range(100):
                statuses = {p.status() for p in tree}
                if wanted(statuses):
                    break
                time.sleep(0.02)
            return statuses

        with bench_peer._stopped(parent.pid):
            assert statuses_settle(lambda s: s == {psutil.STATUS_STOPPED}) == {psutil.STATUS_STOPPED}
        assert psutil.STATUS_STOPPED not in statuses_settle(lambda s: psutil.STATUS_STOPPED not in s)
        with bench_peer._stopped(None):  # no --pause-peer: nothing is touched
            assert psutil.STATUS_STOPPED not in {p.status() for p in tree}
    finally:
        for process in psutil.Process(parent.pid).children(recursive=True):
            process.kill()
        parent.kill()
        parent.wait()
