"""Fallback telemetry from Docker's stats API, sampled once a second, for when no cgroup of the
container is readable here (a remote engine, or a harness in another cgroup namespace): its peaks
are the most of those samples, a lower bound that misses anything shorter than a second."""

from __future__ import annotations

import time

from harness.limits.cgroups import Usage

SAMPLE_S = 1.0


class StatsSampler:
    def __init__(self, client, container_id: str, *, enabled: bool) -> None:
        self.client = client
        self.container_id = container_id
        self.enabled = enabled
        self._next = 0.0
        self._peak = 0
        self._cpu_ns = 0
        self._pids = 0
        self._current: tuple[float, int, float] | None = None

    def maybe_sample(self) -> None:
        if not self.enabled or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + SAMPLE_S
        try:
            stats = self.client.api.stats(self.container_id, stream=False, one_shot=True)
        except Exception:  # noqa: BLE001 - telemetry is best effort; the run goes on
            return
        memory = stats.get("memory_stats") or {}
        self._peak = max(self._peak, memory.get("max_usage", 0), memory.get("usage", 0))
        self._cpu_ns = max(self._cpu_ns, ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0))
        self._pids = max(self._pids, (stats.get("pids_stats") or {}).get("current", 0))
        self._current = (time.time(), memory.get("usage", 0), self._cpu_ns / 1e9)

    def current(self) -> tuple[float, int, float] | None:
        """The latest reading (Unix time, memory in use, CPU seconds so far), for telemetry."""
        return self._current

    def usage(self) -> Usage:
        return Usage(self._cpu_ns / 1e9, self._peak, self._pids)
