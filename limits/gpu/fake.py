"""A FAKE NVML for machines without an NVIDIA GPU (the tests, ``gpu_check.py --dry-run``).

It stands in for the driver one level below the harness: ``FakePynvml`` has the pynvml functions
the harness calls and raises pynvml's own exceptions (``NVMLError_NotSupported`` for utilization
on MIG, ``NVMLError_GpuIsLost``, ``NVMLError_Uninitialized``, ``NVMLLibraryMismatchError``), so
the real ``PynvmlNvml`` wrapper, and everything above it, runs unchanged. Callers set what each
device "shows".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

from harness.limits.gpu.nvml import PynvmlNvml


@dataclass
class FakeDevice:
    processes: dict[int, int | None] = field(default_factory=dict)  # pid -> GPU memory bytes (None: NVML cannot tell)
    utilization: int = 0
    memory_used: int = 0
    uuid: str = ""
    # A GPU in MIG mode: its MIG devices (slices). NVML then supports no utilization on it or them.
    mig: list[FakeDevice] | None = None
    parent: FakeDevice | None = None
    # What every call on this device raises from now on (a pynvml exception: the GPU lost, a driver
    # reload, a library older than pynvml's functions), as the driver does.
    error: Exception | None = None

    @property
    def mig_enabled(self) -> bool:
        return self.mig is not None or (self.parent is not None and self.parent.mig_enabled)


class FakePynvml:
    """The pynvml module's surface that ``PynvmlNvml`` uses, over ``FakeDevice``s."""

    NVMLError = pynvml.NVMLError
    NVMLLibraryMismatchError = pynvml.NVMLLibraryMismatchError

    def __init__(self, count: int = 1, cuda_version: int = 12080) -> None:
        self.gpus = [FakeDevice(uuid=f"GPU-fake-{i}") for i in range(count)]
        self.cuda = cuda_version
        self.failing = False  # every call raises a transient error, as when the driver hiccups
        self.error: Exception | None = None  # every call raises this (the driver unloaded: Uninitialized)

    def _check(self, device: FakeDevice | None = None) -> None:
        if self.error is not None:
            raise self.error
        if self.failing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
        if device is not None and device.error is not None:
            raise device.error

    def nvmlInit(self) -> None:
        self._check()

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeDevice:
        self._check()
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> FakeDevice:
        self._check()
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        every = [d for gpu in self.gpus for d in [gpu, *(gpu.mig or [])]]
        found = next((d for d in every if d.uuid == uuid), None)
        if found is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return found

    def nvmlDeviceGetUUID(self, device: FakeDevice) -> str:
        self._check(device)
        return device.uuid

    def nvmlDeviceGetMigMode(self, device: FakeDevice) -> list[int]:
        self._check(device)
        return [1, 1] if device.mig is not None else [0, 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, device: FakeDevice) -> int:
        self._check(device)
        return 7 if device.mig is not None else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: FakeDevice, index: int) -> FakeDevice:
        self._check(device)
        if device.mig is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(device.mig):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return device.mig[index]

    def nvmlDeviceGetComputeRunningProcesses(self, device: FakeDevice) -> list[Any]:
        self._check(device)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in device.processes.items()]

    def nvmlDeviceGetUtilizationRates(self, device: FakeDevice) -> Any:
        self._check(device)
        if device.mig_enabled:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)  # what the driver answers on MIG
        return SimpleNamespace(gpu=device.utilization, memory=0)

    def nvmlDeviceGetMemoryInfo(self, device: FakeDevice) -> Any:
        self._check(device)
        return SimpleNamespace(used=device.memory_used, total=80 * 1024**3, free=80 * 1024**3 - device.memory_used)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check()
        return self.cuda


class FakeNvml(PynvmlNvml):
    """The harness's real NVML wrapper over a ``FakePynvml``; ``by_id`` maps "0", "1", … and each MIG
    device's UUID to what it shows."""

    def __init__(self, count: int = 1, *, cuda_version: int = 12080) -> None:
        self.fake = FakePynvml(count, cuda_version)
        super().__init__(self.fake)

    @property
    def by_id(self) -> dict[str, FakeDevice]:
        found = {str(i): gpu for i, gpu in enumerate(self.fake.gpus)}
        for gpu in self.fake.gpus:
            found.update({mig.uuid: mig for mig in gpu.mig or []})
        return found

    @property
    def failing(self) -> bool:
        return self.fake.failing

    @failing.setter
    def failing(self, value: bool) -> None:
        self.fake.failing = value

    def make_mig(self, gpu: int, slices: int) -> list[str]:
        """Put GPU ``gpu`` in MIG mode with ``slices`` MIG devices; their UUIDs."""
        parent = self.fake.gpus[gpu]
        parent.mig = [FakeDevice(uuid=f"MIG-fake-{gpu}-{i}", parent=parent) for i in range(slices)]
        return [mig.uuid for mig in parent.mig]
