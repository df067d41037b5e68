"""GPU memory watchdog and telemetry: what a run's processes hold on its GPUs, against its limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from harness.limits.gpu.nvml import Nvml, NvmlError
from harness.limits.verdicts import PhaseVerdict
from harness.util.sizes import format_size

POLL_S = 0.25
SERIES_S = 1.0  # at most one point per second goes into the series (MLflow)
# Failed reads in a row after which the limit is taken for off, and the phase stopped: a persistent
# error (the GPU lost, the driver reloaded, a call the driver does not support) fails every poll.
MAX_FAILURES = 4


@dataclass(frozen=True)
class GpuSample:
    at: float  # Unix time, seconds
    memory_bytes: int  # the run's processes, summed over its devices
    utilization: float | None  # percent, mean over its devices that NVML measures; None where none is (MIG)


@dataclass(frozen=True)
class GpuStop:
    """Why the watch stops a run: over its GPU memory (``MEMORY_LIMIT``), or unable to hold it to its
    limit (``INFRA_ERROR``: NVML failed poll after poll)."""

    verdict: PhaseVerdict
    message: str


def gpu_memory_problem(phase: str, used: int, limit: int | None) -> str | None:
    if limit is None or used <= limit:
        return None
    return f"{phase} used {format_size(used)} of GPU memory, over its limit of {format_size(limit)}"


class GpuWatch:
    """Samples a run's GPU memory and utilization, and says when the run must be stopped.

    ``pids`` gives the run's host PIDs (a container's cgroup, or a process tree) and NVML each
    compute process's memory per device. The device is the run's alone, so the whole device's used
    memory counts instead where NVML cannot tell a process's figure, or where it lists processes of
    which none is the run's (NVML reports host PIDs: a harness in a PID namespace of its own matches
    none): both err toward the limit. A figure never read stays unknown (None), never 0.
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
        self.devices = list(devices)
        self.handles = [nvml.handle(device) for device in devices]
        self.pids = pids
        self.phase = phase
        self.limit = limit
        self.interval = interval
        self.clock = clock
        self.peak_memory_bytes: int | None = None
        self.peak_utilization: float | None = None
        self.series: list[GpuSample] = []
        self.failures = 0  # failed reads in a row
        self.foreign_pids = False  # NVML listed processes, none of them the run's: the whole device counted
        self._next = 0.0

    def poll(self) -> GpuStop | None:
        """Sample when due; return why the run must be stopped, or None."""
        now = self.clock()
        if now < self._next:
            return None
        self._next = now + self.interval
        try:
            sample = self.sample()
        except NvmlError as exc:
            self.failures += 1
            if self.failures < MAX_FAILURES and not (exc.persistent and self.failures > 1):
                return None  # transient (a process exited mid-read): the next poll decides
            return GpuStop(
                PhaseVerdict.INFRA_ERROR,
                f"{self.phase}: its GPU memory could not be watched, NVML failed {self.failures} time(s) in a row "
                f"on GPU(s) {', '.join(self.devices)} ({exc}); the phase was stopped, since its GPU memory limit did not hold",
            )
        self.failures = 0
        if problem := gpu_memory_problem(self.phase, sample.memory_bytes, self.limit):
            return GpuStop(PhaseVerdict.MEMORY_LIMIT, problem)
        return None

    def sample(self) -> GpuSample:
        pids = set(self.pids())
        memory = sum(self._memory(handle, pids) for handle in self.handles)
        measured = [u for u in (self.nvml.utilization(handle) for handle in self.handles) if u is not None]
        utilization = sum(measured) / len(measured) if measured else None
        sample = GpuSample(self.clock(), memory, utilization)
        self.peak_memory_bytes = max(self.peak_memory_bytes or 0, memory)
        if utilization is not None:
            self.peak_utilization = max(self.peak_utilization or 0.0, utilization)
        if not self.series or sample.at - self.series[-1].at >= SERIES_S:
            self.series.append(sample)
        return sample

    def _memory(self, handle: object, pids: set[int]) -> int:
        processes = self.nvml.processes(handle)
        ours = [used for pid, used in processes if pid in pids]
        if processes and not ours:
            self.foreign_pids = True
            return self.nvml.memory_used(handle)
        if None in ours:
            return self.nvml.memory_used(handle)
        return sum(used for used in ours if used is not None)
