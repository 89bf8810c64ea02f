"""scripts/cpu-line.sh: the one line .ci/run starts with, naming the CPU and its vector extensions."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from support.paths import REPO

SCRIPT = REPO / "scripts" / "cpu-line.sh"
AVX512_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni aes

processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni aes
"""


def cpu_line(cpuinfo: Path | None = None) -> str:
    environment = dict(os.environ, **({"CPUINFO": str(cpuinfo)} if cpuinfo else {}))
    return subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=True, env=environment).stdout


def test_an_avx512_cpu_is_named_with_its_vector_extensions_once(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(AVX512_CPUINFO)
    assert cpu_line(cpuinfo) == (
        f"CPU: AMD EPYC 9R14 x {os.cpu_count()}; "
        "vector extensions: fma sse4_2 avx avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni\n"
    )


def test_this_machines_line() -> None:
    line = cpu_line()
    assert re.fullmatch(r"CPU: .+ x \d+; vector extensions: [a-z0-9_ ]*\n", line), line
    flags = Path("/proc/cpuinfo").read_text()
    assert ("avx2" in line.split("vector extensions:")[1].split()) == (" avx2 " in flags.replace("\n", " "))


def test_ci_prints_it_before_the_tests() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.index("scripts/cpu-line.sh") < ci.index("scripts/test.sh")
