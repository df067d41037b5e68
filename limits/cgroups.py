"""Exact CPU time, peak memory and peak process count, read from the kernel's cgroups.

A container's own cgroup vanishes when it exits, taking its counters with it. So each run is
placed under a parent cgroup of its own (``--cgroup-parent /harness/<run>``) that outlives the
container: its hierarchical counters hold the final figures, read after exit, then removed.
This needs the ``cgroupfs`` driver and the daemon's cgroup tree visible here (a local daemon);
``available`` says whether that holds, and the runner samples Docker's stats API otherwise.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
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
