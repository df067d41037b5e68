"""GPUs: NVML behind a small interface, the GPU memory watchdog and telemetry, availability."""

from harness.limits.gpu.available import gpu_problem
from harness.limits.gpu.nvml import Nvml, NvmlError, load_nvml
from harness.limits.gpu.watch import GpuSample, GpuWatch, gpu_memory_problem

__all__ = ["GpuSample", "GpuWatch", "Nvml", "NvmlError", "gpu_memory_problem", "gpu_problem", "load_nvml"]
