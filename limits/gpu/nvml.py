"""The few NVML calls the harness needs, behind a small interface (real: ``nvidia-ml-py``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol


class NvmlError(RuntimeError):
    """An NVML call failed (the process may have exited meanwhile, the device may be gone)."""


class Nvml(Protocol):
    def device_count(self) -> int: ...

    def handle(self, device: str) -> Any:
        """A device by NVML index ("0") or UUID ("GPU-…", "MIG-…")."""

    def processes(self, handle: Any) -> list[tuple[int, int | None]]:
        """(host pid, GPU memory bytes or None when NVML cannot tell) of each compute process."""

    def utilization(self, handle: Any) -> int:
        """Percent of the last sample period the device was busy."""

    def memory_used(self, handle: Any) -> int: ...


class PynvmlNvml:
    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise NvmlError("the nvidia-ml-py package is not installed (pip install nvidia-ml-py)") from None
        self._nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlError(f"the NVIDIA driver's NVML library cannot be initialised ({exc})") from None

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._nv, name)(*args)
        except self._nv.NVMLError as exc:
            raise NvmlError(f"{name}: {exc}") from None

    def device_count(self) -> int:
        return self._call("nvmlDeviceGetCount")

    def handle(self, device: str) -> Any:
        if device.isdigit():
            return self._call("nvmlDeviceGetHandleByIndex", int(device))
        return self._call("nvmlDeviceGetHandleByUUID", device)

    def processes(self, handle: Any) -> list[tuple[int, int | None]]:
        return [(p.pid, p.usedGpuMemory) for p in self._call("nvmlDeviceGetComputeRunningProcesses", handle)]

    def utilization(self, handle: Any) -> int:
        return self._call("nvmlDeviceGetUtilizationRates", handle).gpu

    def memory_used(self, handle: Any) -> int:
        return self._call("nvmlDeviceGetMemoryInfo", handle).used


@lru_cache(maxsize=1)
def load_nvml() -> Nvml:
    """This process's NVML, initialised once; raises ``NvmlError`` (not cached) saying why it cannot be."""
    return PynvmlNvml()
