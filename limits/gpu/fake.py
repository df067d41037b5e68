"""A fake NVML for machines without an NVIDIA GPU (the tests, ``gpu_check.py --dry-run``).

It stands in for the driver: callers set what each device "shows" and the code under test reads it
through the same ``Nvml`` interface as the real library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.limits.gpu.nvml import NvmlError


@dataclass
class FakeDevice:
    processes: dict[int, int | None] = field(default_factory=dict)  # pid -> GPU memory bytes
    utilization: int = 0
    memory_used: int = 0


class FakeNvml:
    def __init__(self, count: int = 1) -> None:
        self.devices = {str(i): FakeDevice() for i in range(count)}
        self.failing = False  # every call raises, as when the driver hiccups

    def _check(self) -> None:
        if self.failing:
            raise NvmlError("fake NVML failure")

    def device_count(self) -> int:
        self._check()
        return len(self.devices)

    def handle(self, device: str) -> FakeDevice:
        self._check()
        if device not in self.devices:
            raise NvmlError(f"no GPU {device!r}")
        return self.devices[device]

    def processes(self, handle: FakeDevice) -> list[tuple[int, int | None]]:
        self._check()
        return list(handle.processes.items())

    def utilization(self, handle: FakeDevice) -> int:
        self._check()
        return handle.utilization

    def memory_used(self, handle: FakeDevice) -> int:
        self._check()
        return handle.memory_used
