"""GPU memory watchdog and telemetry: what a run's processes hold on its GPUs, against its limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from harness.limits.gpu.nvml import Nvml, NvmlError
from harness.util.sizes import format_size

POLL_S = 0.25
SERIES_S = 1.0  # at most one point per second goes into the series (MLflow)


@dataclass(frozen=True)
class GpuSample:
    at: float  # Unix time, seconds
    memory_bytes: int  # the run's processes, summed over its devices
    utilization: float  # percent, mean over its devices


def gpu_memory_problem(phase: str, used: int, limit: int | None) -> str | None:
    if limit is None or used <= limit:
        return None
    return f"{phase} used {format_size(used)} of GPU memory, over its limit of {format_size(limit)}"


class GpuWatch:
    """Samples a run's GPU memory and utilization, and says when the memory is over its limit.

    ``pids`` gives the run's host PIDs (a container's cgroup, or a process tree) and NVML each
    compute process's memory per device. Where NVML cannot tell a process's figure, the device's
    whole used memory counts instead: the device is the run's alone, so this errs toward the limit.
    """

    def __init__(
        self,
        nvml: Nvml,
        devices: Sequence[str],
        pids: Callable[[], Collection[int]],
        *,
        phase: str,
        limit: int | None,
        interval: float = POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nvml = nvml
        self.handles = [nvml.handle(device) for device in devices]
        self.pids = pids
        self.phase = phase
        self.limit = limit
        self.interval = interval
        self.clock = clock
        self.peak_memory_bytes = 0
        self.peak_utilization = 0.0
        self.series: list[GpuSample] = []
        self._next = 0.0

    def poll(self) -> str | None:
        """Sample when due; return why the run must be stopped, or None."""
        now = self.clock()
        if now < self._next:
            return None
        self._next = now + self.interval
        try:
            sample = self.sample()
        except NvmlError:
            return None  # transient (a process exited mid-read): the next poll decides
        return gpu_memory_problem(self.phase, sample.memory_bytes, self.limit)

    def sample(self) -> GpuSample:
        pids = set(self.pids())
        memory = sum(self._memory(handle, pids) for handle in self.handles)
        utilization = sum(self.nvml.utilization(handle) for handle in self.handles) / max(1, len(self.handles))
        sample = GpuSample(self.clock(), memory, utilization)
        self.peak_memory_bytes = max(self.peak_memory_bytes, memory)
        self.peak_utilization = max(self.peak_utilization, utilization)
        if not self.series or sample.at - self.series[-1].at >= SERIES_S:
            self.series.append(sample)
        return sample

    def _memory(self, handle: object, pids: set[int]) -> int:
        ours = [used for pid, used in self.nvml.processes(handle) if pid in pids]
        if None in ours:
            return self.nvml.memory_used(handle)
        return sum(used for used in ours if used is not None)
