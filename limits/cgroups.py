"""Exact CPU time, peak memory and peak process count, read from the kernel's cgroups.

Two ways, the first that applies (docs/security.md, "Accounting on current hosts"):

- ``RunCgroup``: each run is placed under a parent cgroup of its own (``--cgroup-parent
  /harness/<run>``) that outlives the container: its hierarchical counters hold the final
  figures, read after exit, then removed. Needs the ``cgroupfs`` driver and the right to remove
  that parent (root). Exact.
- ``ContainerCgroup``: the container's own cgroup, found from ``/proc/<init pid>/cgroup`` and
  this process's ``mountinfo``, under either driver and either cgroup version; its files are
  world-readable, so no root is needed. It vanishes when the container exits, so it is read all
  along (every 50 ms, by the watch loop) and once more the moment the init's pidfd reports the
  exit, when every process of the container is gone but the engine has not yet removed the
  cgroup. The kernel's counters are high-water marks (``memory.max_usage_in_bytes``,
  ``memory.peak``, ``pids.peak``) or monotonic (CPU time): that last read is the exact final
  figure; should the engine win the race, the last read before it is a lower bound, and
  ``exact`` says which.

Where neither applies (a remote engine) the runner samples Docker's stats API instead.
"""

from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    peak_memory_bytes: int
    peak_pids: int


class RunCgroup:
    def __init__(self, run_id: str, *, version: str, driver: str) -> None:
        self.parent = f"/harness/{run_id}"
        self.v2 = str(version) == "2"
        self.enabled = driver == "cgroupfs" and CGROUP_ROOT.is_dir() and os.access(CGROUP_ROOT, os.W_OK)

    def _dir(self, controller: str) -> Path:
        rel = self.parent.lstrip("/")
        return CGROUP_ROOT / rel if self.v2 else CGROUP_ROOT / controller / rel

    @property
    def available(self) -> bool:
        """True once the container runs, when its parent cgroup is visible from here."""
        return self.enabled and self._dir("memory").is_dir()

    def read(self) -> Usage | None:
        if not self.available:
            return None
        if self.v2:
            cpu_us = _stat_field(self._dir("cpu") / "cpu.stat", "usage_usec")
            return Usage(cpu_us / 1e6, _int(self._dir("memory") / "memory.peak"), _int(self._dir("pids") / "pids.peak"))
        return Usage(
            _int(self._dir("cpuacct") / "cpuacct.usage") / 1e9,
            _int(self._dir("memory") / "memory.max_usage_in_bytes"),
            _int(self._dir("pids") / "pids.peak"),
        )

    def current(self) -> tuple[float, int, float] | None:
        """(Unix time, memory in use now, CPU seconds so far) for telemetry; None when not visible here."""
        if not self.available:
            return None
        if self.v2:
            return time.time(), _int(self._dir("memory") / "memory.current"), _stat_field(self._dir("cpu") / "cpu.stat", "usage_usec") / 1e6
        return time.time(), _int(self._dir("memory") / "memory.usage_in_bytes"), _int(self._dir("cpuacct") / "cpuacct.usage") / 1e9

    def remove(self) -> None:
        if not self.enabled:
            return
        rel = self.parent.lstrip("/")
        dirs = [CGROUP_ROOT / rel] if self.v2 else [CGROUP_ROOT / c / rel for c in _v1_controllers()]
        for path in dirs:
            try:
                path.rmdir()
            except OSError:
                pass


def _v1_controllers() -> list[str]:
    try:
        return [p.name for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _stat_field(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


# (Unix time of the reading, memory in use now in bytes, CPU seconds used so far): telemetry's Reading.
# v1 shows "no limit" as the largest page-aligned number, 9223372036854771712.
UNLIMITED = 2**62
Reading = tuple[float, int, float]


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem as ``/proc/self/mountinfo`` lists it."""

    root: str  # the cgroup this mount shows at its mount point
    mount_point: str
    version: int  # 1 or 2
    controllers: frozenset[str] = frozenset()  # v1 only

    def locate(self, cgroup_path: str, host_root: Path) -> Path | None:
        """Where ``cgroup_path`` of this hierarchy lies on disk; None when this mount does not show it."""
        root = self.root.rstrip("/") or "/"
        if cgroup_path != root and not cgroup_path.startswith(root.rstrip("/") + "/"):
            return None  # outside this mount (e.g. another cgroup namespace: "/../..")
        rel = cgroup_path[len(root) :].lstrip("/")
        return host_root / self.mount_point.lstrip("/") / rel


def cgroup_mounts(mountinfo: str) -> list[CgroupMount]:
    """The cgroup (v1) and cgroup2 mounts in a ``mountinfo`` text."""
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 3 or len(fields) < 5:
            continue
        fstype, options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            mounts.append(CgroupMount(root, mount_point, 2))
        elif fstype == "cgroup":
            mounts.append(CgroupMount(root, mount_point, 1, frozenset(options.split(","))))
    return mounts


def process_cgroups(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as {controller: path}; the v2 (unified) line under the key ``""``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path:
            continue
        if not controllers:
            paths[""] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


# The files each figure comes from, per version: (controller, file name).
_V1_FILES = {
    "peak": ("memory", "memory.max_usage_in_bytes"),
    "memory": ("memory", "memory.usage_in_bytes"),
    "limit": ("memory", "memory.limit_in_bytes"),
    "failcnt": ("memory", "memory.failcnt"),
    "cpu": ("cpuacct", "cpuacct.usage"),
    "pids_peak": ("pids", "pids.peak"),
    "pids": ("pids", "pids.current"),
}
_V2_FILES = {
    "peak": ("", "memory.peak"),
    "memory": ("", "memory.current"),
    "limit": ("", "memory.max"),
    "events": ("", "memory.events"),
    "cpu": ("", "cpu.stat"),
    "pids_peak": ("", "pids.peak"),
    "pids": ("", "pids.current"),
}


@dataclass
class ContainerCgroup:
    """A running container's own cgroup files, held open and read while it lives (see the module's text).

    ``poll`` reads every counter and keeps the most seen; a counter whose file is gone (the
    container's cgroup was removed) is read no more. Kernels without ``memory.peak`` or
    ``pids.peak`` (v2 before 5.19; older kernels) get the most of the current figure seen.
    """

    version: int
    directories: dict[str, Path]  # controller ("" for v2) -> the container's directory
    _fds: dict[str, int] = field(default_factory=dict)
    peak_memory_bytes: int = 0
    cpu_ns: int = 0
    peak_pids: int = 0
    memory_limit: int | None = None
    limit_hit: bool = False  # the kernel refused memory at the limit (v1 failcnt, v2 events "max")
    readings: int = 0
    exact: bool = False  # the figures were read after every process of the container had exited
    _current: Reading | None = None

    @classmethod
    def find(cls, pid: int, *, proc: Path = Path("/proc"), host_root: Path = Path("/")) -> ContainerCgroup | None:
        """The cgroup of process ``pid`` (the container's init), or None where it is not visible from here."""
        try:
            mounts = cgroup_mounts((proc / "self" / "mountinfo").read_text())
            paths = process_cgroups((proc / str(pid) / "cgroup").read_text())
        except OSError:
            return None
        v1 = {c: m for m in mounts if m.version == 1 for c in m.controllers}
        if "memory" in v1 and "memory" in paths:  # v1 (or hybrid: v1 controllers beside an empty v2 tree)
            version, files = 1, _V1_FILES
            directories = {c: v1[c].locate(paths[c], host_root) for c in ("memory", "cpuacct", "pids") if c in v1 and c in paths}
        else:
            unified = next((m for m in mounts if m.version == 2), None)
            if unified is None or "" not in paths:
                return None
            version, files = 2, _V2_FILES
            directories = {"": unified.locate(paths[""], host_root)}
        found = {c: d for c, d in directories.items() if d is not None and d.is_dir()}
        if "memory" not in found and "" not in found:
            return None
        cgroup = cls(version, found)
        for name, (controller, filename) in files.items():
            if controller in found:
                try:
                    cgroup._fds[name] = os.open(found[controller] / filename, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    pass  # this kernel has no such file (an older one without a peak)
        if "peak" not in cgroup._fds and "memory" not in cgroup._fds:
            cgroup.close()
            return None
        limit = _first_int(cgroup._read("limit"))  # v2 "max" reads 0
        if 0 < limit < UNLIMITED:
            cgroup.memory_limit = limit
        return cgroup

    def procs_directory(self) -> Path | None:
        """The directory whose ``cgroup.procs`` (and its sub-cgroups') list the container's host PIDs."""
        for controller in ("pids", "memory", ""):
            if controller in self.directories:
                return self.directories[controller]
        return None

    def _read(self, name: str) -> str | None:
        fd = self._fds.get(name)
        if fd is None:
            return None
        try:
            return os.pread(fd, 4096, 0).decode()
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT, errno.ESTALE, errno.EIO):
                os.close(self._fds.pop(name))  # the cgroup is gone: nothing more to read there
            return None

    @property
    def alive(self) -> bool:
        """Whether the memory figures can still be read."""
        return "peak" in self._fds or "memory" in self._fds

    def poll(self, *, final: bool = False) -> bool:
        """Read every counter, keeping the most seen; ``final``: after the container's last process
        exited, when a complete read gives the exact final figures. True when the memory was read."""
        peak, memory, cpu = self._read("peak"), self._read("memory"), self._read("cpu")
        if peak is None and memory is None:
            return False
        now = time.time()
        memory_now = _first_int(memory)
        self.peak_memory_bytes = max(self.peak_memory_bytes, _first_int(peak), memory_now)
        if cpu is not None:
            cpu_ns = _first_int(cpu) if self.version == 1 else _field(cpu, "usage_usec") * 1000
            self.cpu_ns = max(self.cpu_ns, cpu_ns)
        pids = self._read("pids_peak") or self._read("pids")
        self.peak_pids = max(self.peak_pids, _first_int(pids))
        if self.version == 1:
            self.limit_hit = self.limit_hit or _first_int(self._read("failcnt")) > 0
        else:
            events = self._read("events") or ""
            self.limit_hit = self.limit_hit or _field(events, "max") > 0 or _field(events, "oom_kill") > 0
        self.readings += 1
        self._current = (now, memory_now, self.cpu_ns / 1e9)
        if final and peak is not None and cpu is not None:
            self.exact = True
        return True

    def current(self) -> Reading | None:
        """The latest reading (Unix time, memory in use, CPU seconds so far), for telemetry."""
        return self._current

    def usage(self, *, oom_killed: bool = False) -> Usage:
        """The figures. Killed by the kernel at its memory limit (or refused memory there), the
        container's peak was that limit, even when the engine removed its cgroup before the last read."""
        peak = self.peak_memory_bytes
        if (oom_killed or self.limit_hit) and self.memory_limit and not self.exact:
            peak = max(peak, self.memory_limit)
        return Usage(self.cpu_ns / 1e9, peak, self.peak_pids)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _unescape(value: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), value)


def _first_int(text: str | None) -> int:
    try:
        return int(text.split()[0]) if text else 0
    except (ValueError, IndexError):
        return 0


def _field(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
