"""usable_cpus() on fake /proc and cgroup trees: quotas (v2, v1, on a parent), affinity, and broken files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from densenet_server.config import Settings
from densenet_server.cpus import CpuLimit, describe, usable_cpus

V2_MOUNT = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate"
V1_CPU_MOUNT = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct"
HYBRID_V2_MOUNT = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw"


def fake_root(tmp_path: Path, cgroup: str, mountinfo: list[str] | None, files: dict[str, str]) -> Path:
    """A filesystem root holding /proc/self/cgroup, /proc/self/mountinfo (None: absent) and the given files."""
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    if mountinfo is not None:
        (tmp_path / "proc/self/mountinfo").write_text("\n".join(mountinfo) + "\n")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def v2_root(tmp_path: Path, cpu_max: dict[str, str], cgroup: str = "/app.slice/server") -> Path:
    """cgroup v2, the process in `cgroup`; cpu_max maps cgroup folders (relative to the mount) to cpu.max."""
    files = {f"sys/fs/cgroup/{folder}/cpu.max".replace("//", "/"): text for folder, text in cpu_max.items()}
    return fake_root(tmp_path, f"0::{cgroup}\n", [V2_MOUNT], files)


def v1_root(tmp_path: Path, quota: str, period: str = "100000") -> Path:
    files = {
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": quota + "\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": period + "\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us": "-1\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us": "100000\n",
    }
    cgroup = "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
    return fake_root(tmp_path, cgroup, [V1_CPU_MOUNT], files)


def test_v2_quota_limits_a_large_host(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "200000 100000\n"})
    limit = usable_cpus(root, affinity=64, host=64)
    assert limit == CpuLimit(2, "cgroup v2 cpu.max 200000/100000 on /app.slice/server (host has 64 CPUs, affinity 64)")


def test_v2_without_quota_leaves_the_affinity(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "max 100000\n", "app.slice": "max 100000\n"})
    limit = usable_cpus(root, affinity=16, host=64)
    assert limit.count == 16
    assert limit.source == "scheduler affinity (host has 64 CPUs, affinity 16; no cgroup CPU quota)"


def test_a_quota_on_a_parent_limits_too(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "max 100000", "app.slice": "300000 100000", "": "max 100000"})
    limit = usable_cpus(root, affinity=64, host=64)
    assert limit.count == 3
    assert "on /app.slice " in limit.source


def test_the_tightest_of_several_quotas_wins(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "400000 100000", "app.slice": "100000 50000"})
    assert usable_cpus(root, affinity=64, host=64).count == 2


def test_a_fractional_quota_is_rounded_up(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "150000 100000"})
    assert usable_cpus(root, affinity=64, host=64).count == 2


def test_a_quota_below_one_cpu_still_gives_one(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "10000 100000"})
    assert usable_cpus(root, affinity=64, host=64).count == 1


def test_an_affinity_below_the_quota_wins(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {"app.slice/server": "400000 100000"})
    limit = usable_cpus(root, affinity=2, host=64)
    assert limit.count == 2
    assert limit.source.startswith("scheduler affinity (host has 64 CPUs, affinity 2; cgroup v2 cpu.max 400000/100000")
    assert limit.source.endswith("allows 4)")


def test_a_container_with_its_own_cgroup_namespace(tmp_path: Path) -> None:
    """docker/podman with cgroupns: the process is in "/" and the quota is on the namespace's root."""
    root = v2_root(tmp_path, {"": "200000 100000"}, cgroup="/")
    assert usable_cpus(root, affinity=64, host=64).count == 2


def test_v1_quota(tmp_path: Path) -> None:
    limit = usable_cpus(v1_root(tmp_path, "300000"), affinity=64, host=64)
    assert limit.count == 3
    assert "cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us 300000/100000 on /docker/abc" in limit.source


def test_v1_without_quota(tmp_path: Path) -> None:
    limit = usable_cpus(v1_root(tmp_path, "-1"), affinity=8, host=64)
    assert limit.count == 8 and "no cgroup CPU quota" in limit.source


def test_v1_mount_of_the_container_own_cgroup(tmp_path: Path) -> None:
    """docker on cgroup v1 without a cgroup namespace mounts /docker/<id> itself at the mount point."""
    mount = "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct"
    files = {"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"}
    root = fake_root(tmp_path, "4:cpu,cpuacct:/docker/abc\n", [mount], files)
    assert usable_cpus(root, affinity=64, host=64).count == 2


def test_hybrid_reads_v1_when_v2_has_no_cpu_controller(tmp_path: Path) -> None:
    files = {"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"}
    cpu_mount = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu"
    root = fake_root(tmp_path, "1:cpu:/\n0::/\n", [HYBRID_V2_MOUNT, cpu_mount], files)
    assert usable_cpus(root, affinity=64, host=64).count == 2


def test_without_mountinfo_the_usual_mount_point_is_read(tmp_path: Path) -> None:
    root = fake_root(tmp_path, "0::/x\n", None, {"sys/fs/cgroup/x/cpu.max": "200000 100000"})
    assert usable_cpus(root, affinity=64, host=64).count == 2


def test_a_cgroup_outside_the_namespace_reads_the_mount_point_only(tmp_path: Path) -> None:
    root = fake_root(tmp_path, "0::/../../elsewhere\n", [V2_MOUNT], {"sys/fs/cgroup/cpu.max": "300000 100000"})
    assert usable_cpus(root, affinity=64, host=64).count == 3


@pytest.mark.parametrize(
    "cpu_max", ["", "garbage", "200000", "-1 100000", "200000 0", "0 100000", "max", "2e5 100000"]
)
def test_malformed_quotas_fall_back_to_the_affinity(tmp_path: Path, cpu_max: str) -> None:
    root = v2_root(tmp_path, {"app.slice/server": cpu_max})
    assert usable_cpus(root, affinity=5, host=64).count == 5


def test_unreadable_quota_falls_back_to_the_affinity(tmp_path: Path) -> None:
    root = v2_root(tmp_path, {})
    (root / "sys/fs/cgroup/app.slice/server/cpu.max").mkdir(parents=True)  # reading it raises an OSError
    assert usable_cpus(root, affinity=5, host=64).count == 5


def test_no_proc_at_all_falls_back_to_the_affinity(tmp_path: Path) -> None:
    limit = usable_cpus(tmp_path, affinity=3, host=8)
    assert limit == CpuLimit(3, "scheduler affinity (host has 8 CPUs, affinity 3; no cgroup CPU quota)")


def test_this_machine_gives_at_least_one_cpu() -> None:
    limit = usable_cpus()
    assert limit.count >= 1
    assert describe() == {"cpus": limit.count, "source": limit.source}


def test_automatic_threads_follow_the_usable_cpus() -> None:
    assert Settings(threads=0).effective_threads() == usable_cpus().count
    assert Settings(threads=3).effective_threads() == 3


@pytest.fixture
def environment_restored() -> Iterator[None]:
    """serve() prepares the environment its processes inherit (e.g. the metrics folder); the test process's
    must be as it was afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.usefixtures("environment_restored")
def test_serve_logs_the_usable_cpus(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from densenet_server import server

    monkeypatch.setattr(server, "tune_malloc", lambda: None)
    monkeypatch.setattr(server.GunicornServer, "run", lambda self: None)  # no gunicorn, no model
    with caplog.at_level("INFO", logger=server.__name__):
        server.serve(Settings())
    limit = usable_cpus()
    assert f"usable CPUs: {limit.count} ({limit.source})" in caplog.messages
