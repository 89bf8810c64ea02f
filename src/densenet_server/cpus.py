"""How many CPUs this process may use: its scheduler affinity and its cgroup CPU quota, not the host's count.

os.cpu_count() counts the host's CPUs. In a container started with `--cpus 2` on a 64-core host it says 64,
and 64 inference threads on a 2-CPU quota spend most of their time throttled. The kernel limits a process
in two ways that matter here: the CPUs it may be scheduled on (affinity, cpusets), and the CPU time its
cgroup may use per period (the CFS quota: cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`). A quota on an
ancestor cgroup limits every cgroup below it, so each level up to the hierarchy's root is read. A quota of
1.5 CPUs counts as 2: it lets two threads run most of the time, and one would leave half a CPU unused.

Nothing here raises: a file that is missing, unreadable or malformed counts as "no quota there".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath

__all__ = ["CpuLimit", "describe", "usable_cpus"]


@dataclass(frozen=True)
class CpuLimit:
    """The CPUs this process may use, and why (for the start-up log and the layout report)."""

    count: int
    source: str


@dataclass(frozen=True)
class _Quota:
    cpus: Fraction  # CPU time per period, in CPUs
    description: str  # e.g. "cgroup v2 cpu.max 200000/100000 on /user.slice"

    @property
    def whole_cpus(self) -> int:
        return max(1, -(-self.cpus.numerator // self.cpus.denominator))  # rounded up


@dataclass(frozen=True)
class _Mount:
    cgroup: PurePosixPath  # the cgroup shown at the mount point ("/" unless the mount is of a sub-tree)
    point: Path


# Reads one cgroup folder's quota as (quota, period, the file's words for the log); None: no quota there.
QuotaReader = Callable[[Path], tuple[int, int, str] | None]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _v2_quota(folder: Path) -> tuple[int, int, str] | None:
    text = _read(folder / "cpu.max")  # "max 100000" (no quota) or "200000 100000"
    words = text.split() if text is not None else []
    if len(words) != 2 or not all(word.isdigit() for word in words):
        return None
    return int(words[0]), int(words[1]), f"cgroup v2 cpu.max {words[0]}/{words[1]}"


def _v1_quota(folder: Path) -> tuple[int, int, str] | None:
    quota = _read_int(folder / "cpu.cfs_quota_us")  # -1: no quota
    period = _read_int(folder / "cpu.cfs_period_us")
    if quota is None or period is None:
        return None
    return quota, period, f"cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us {quota}/{period}"


def _memberships(root: Path) -> dict[str, str]:
    """/proc/self/cgroup as {controller: cgroup path}; the cgroup v2 line ("0::/path") is under ""."""
    paths: dict[str, str] = {}
    for line in (_read(root / "proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def _is_cpu_hierarchy(version: int, fstype: str, super_options: str) -> bool:
    if version == 2:
        return fstype == "cgroup2"
    return fstype == "cgroup" and "cpu" in super_options.split(",")


def _mount(root: Path, version: int) -> _Mount:
    """Where the hierarchy holding the CPU controller is mounted, from /proc/self/mountinfo; the usual place
    when it does not say. Its root field matters in containers without a cgroup namespace, where the
    mount point shows the container's own cgroup ("/docker/<id>") rather than the hierarchy's root."""
    for line in (_read(root / "proc/self/mountinfo") or "").splitlines():
        mount, _, filesystem = line.partition(" - ")
        fields, kinds = mount.split(), filesystem.split()
        if len(fields) >= 5 and len(kinds) >= 3 and _is_cpu_hierarchy(version, kinds[0], kinds[2]):
            return _Mount(PurePosixPath(fields[3]), root / fields[4].lstrip("/"))
    return _Mount(PurePosixPath("/"), root / ("sys/fs/cgroup" if version == 2 else "sys/fs/cgroup/cpu"))


def _cgroup_folders(mount: _Mount, cgroup: str) -> Iterator[tuple[PurePosixPath, Path]]:
    """(cgroup name, its folder) for the process's cgroup and each ancestor visible in the mount, innermost
    first. A path outside the mount (cgroup namespaces can show "/../x") leaves the mount point alone."""
    path = PurePosixPath(cgroup)
    inside = path.is_relative_to(mount.cgroup) and ".." not in path.parts
    relative = path.relative_to(mount.cgroup) if inside else PurePosixPath()
    for level in (relative, *relative.parents):
        yield mount.cgroup / level, mount.point / level


def _tightest_quota(root: Path, version: int, cgroup: str, read: QuotaReader) -> _Quota | None:
    quotas = []
    for name, folder in _cgroup_folders(_mount(root, version), cgroup):
        found = read(folder)
        if found is not None and found[0] > 0 and found[1] > 0:
            quotas.append(_Quota(Fraction(found[0], found[1]), f"{found[2]} on {name}"))
    return min(quotas, key=lambda quota: quota.cpus, default=None)


def _cgroup_quota(root: Path) -> _Quota | None:
    """The tightest CPU quota on the process's cgroup or its ancestors; cgroup v2 first, then v1 (hybrid
    systems mount v2 without the CPU controller, so no cpu.max is found there)."""
    memberships = _memberships(root)
    if "" in memberships:
        quota = _tightest_quota(root, 2, memberships[""], _v2_quota)
        if quota is not None:
            return quota
    if "cpu" in memberships:
        return _tightest_quota(root, 1, memberships["cpu"], _v1_quota)
    return None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def usable_cpus(root: Path = Path("/"), affinity: int | None = None, host: int | None = None) -> CpuLimit:
    """The CPUs this process may use: min(scheduler affinity, cgroup CPU quota rounded up), at least 1.

    root, affinity and host replace the real filesystem root, os.sched_getaffinity and os.cpu_count in tests.
    """
    affinity = max(1, _affinity() if affinity is None else affinity)
    host = (os.cpu_count() or affinity) if host is None else host
    machine = f"host has {host} CPUs, affinity {affinity}"
    quota = _cgroup_quota(root)
    if quota is None:
        return CpuLimit(affinity, f"scheduler affinity ({machine}; no cgroup CPU quota)")
    if quota.whole_cpus < affinity:
        return CpuLimit(quota.whole_cpus, f"{quota.description} ({machine})")
    return CpuLimit(affinity, f"scheduler affinity ({machine}; {quota.description} allows {quota.whole_cpus})")


def describe() -> dict[str, object]:
    """The usable CPUs and where the count came from, for the server's layout report."""
    limit = usable_cpus()
    return {"cpus": limit.count, "source": limit.source}
