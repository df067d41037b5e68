"""The few NVML calls the harness needs, behind a small interface (real: ``nvidia-ml-py``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

# NVML return codes (nvml.h) that no retry cures: the device, the driver or the library is gone or
# does not do what was asked. A transient error (a process exited mid-read) has none of these.
_PERSISTENT_CODES = {
    1: "uninitialized",  # NVML_ERROR_UNINITIALIZED: the driver was unloaded or reloaded under us
    3: "not supported",  # NVML_ERROR_NOT_SUPPORTED
    4: "no permission",  # NVML_ERROR_NO_PERMISSION
    9: "driver not loaded",  # NVML_ERROR_DRIVER_NOT_LOADED
    12: "library not found",  # NVML_ERROR_LIBRARY_NOT_FOUND
    13: "function not found",  # NVML_ERROR_FUNCTION_NOT_FOUND
    15: "GPU is lost",  # NVML_ERROR_GPU_IS_LOST
    16: "reset required",  # NVML_ERROR_RESET_REQUIRED
    18: "driver/library version mismatch",  # NVML_ERROR_LIB_RM_VERSION_MISMATCH
}
NOT_SUPPORTED = 3


class NvmlError(RuntimeError):
    """An NVML call failed (the process may have exited meanwhile, the device may be gone).

    ``code`` is NVML's return code where there is one; ``persistent`` says that no retry cures it.
    """

    def __init__(self, message: str, *, code: int | None = None, persistent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.persistent = persistent or code in _PERSISTENT_CODES


class Nvml(Protocol):
    def devices(self) -> list[str]:
        """What a container may be given, as Docker and NVML name them: a GPU's index ("0"), or, on a
        GPU in MIG mode, each of its MIG devices' UUIDs ("MIG-…"): a slice is a device."""

    def handle(self, device: str) -> Any:
        """A device by NVML index ("0"), UUID ("GPU-…", "MIG-…") or GPU:MIG index ("0:1")."""

    def processes(self, handle: Any) -> list[tuple[int, int | None]]:
        """(host pid, GPU memory bytes or None when NVML cannot tell) of each compute process."""

    def utilization(self, handle: Any) -> int | None:
        """Percent of the last sample period the device was busy; None where NVML does not measure it (MIG)."""

    def memory_used(self, handle: Any) -> int: ...

    def cuda_version(self) -> str | None:
        """The highest CUDA version the driver supports ("12.8"), or None where NVML cannot tell."""


class PynvmlNvml:
    """``Nvml`` over a pynvml module: the real ``pynvml`` of nvidia-ml-py, or a stand-in with its
    functions and exception classes (``harness.limits.gpu.fake``)."""

    def __init__(self, module: Any = None) -> None:
        if module is None:
            try:
                import pynvml as module
            except ImportError:
                raise NvmlError("the nvidia-ml-py package is not installed (pip install nvidia-ml-py)") from None
        self._nv = module
        try:
            self._call("nvmlInit")
        except NvmlError as exc:
            raise NvmlError(f"the NVIDIA driver's NVML library cannot be initialised ({exc})", code=exc.code, persistent=True) from None

    def _call(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._nv, name)(*args)
        except self._nv.NVMLError as exc:
            code = getattr(exc, "value", None)
            raise NvmlError(f"{name}: {exc}", code=code) from None
        except self._nv.NVMLLibraryMismatchError as exc:  # pynvml 12+: not an NVMLError, raised where a function is missing
            raise NvmlError(f"{name}: {exc}", persistent=True) from None

    def devices(self) -> list[str]:
        found = []
        for index in range(self._call("nvmlDeviceGetCount")):
            gpu = self._call("nvmlDeviceGetHandleByIndex", index)
            if not self._mig_enabled(gpu):
                found.append(str(index))
                continue
            for slot in range(self._call("nvmlDeviceGetMaxMigDeviceCount", gpu)):
                try:
                    mig = self._call("nvmlDeviceGetMigDeviceHandleByIndex", gpu, slot)
                except NvmlError:
                    continue  # no MIG device in this slot
                found.append(_text(self._call("nvmlDeviceGetUUID", mig)))
        return found

    def _mig_enabled(self, gpu: Any) -> bool:
        try:
            current, _pending = self._call("nvmlDeviceGetMigMode", gpu)
        except NvmlError as exc:
            if exc.code == NOT_SUPPORTED:
                return False  # a GPU without MIG
            raise
        return bool(current)

    def handle(self, device: str) -> Any:
        if device.isdigit():
            return self._call("nvmlDeviceGetHandleByIndex", int(device))
        gpu, colon, slot = device.partition(":")
        if colon and gpu.isdigit() and slot.isdigit():
            return self._call("nvmlDeviceGetMigDeviceHandleByIndex", self._call("nvmlDeviceGetHandleByIndex", int(gpu)), int(slot))
        return self._call("nvmlDeviceGetHandleByUUID", device)

    def processes(self, handle: Any) -> list[tuple[int, int | None]]:
        return [(p.pid, p.usedGpuMemory) for p in self._call("nvmlDeviceGetComputeRunningProcesses", handle)]

    def utilization(self, handle: Any) -> int | None:
        try:
            return self._call("nvmlDeviceGetUtilizationRates", handle).gpu
        except NvmlError as exc:
            if exc.code == NOT_SUPPORTED:
                return None  # MIG: NVML does not measure utilization on a MIG-enabled GPU or its slices
            raise

    def memory_used(self, handle: Any) -> int:
        return self._call("nvmlDeviceGetMemoryInfo", handle).used

    def cuda_version(self) -> str | None:
        try:
            version = int(self._call("nvmlSystemGetCudaDriverVersion"))
        except (NvmlError, TypeError, ValueError):
            return None
        return f"{version // 1000}.{version % 1000 // 10}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@lru_cache(maxsize=1)
def load_nvml() -> Nvml:
    """This process's NVML, initialised once; raises ``NvmlError`` (not cached) saying why it cannot be."""
    return PynvmlNvml()
