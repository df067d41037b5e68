"""A phase's GPUs: the exact ids it was assigned, as Docker device requests, watched through NVML."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import docker.errors
from docker.types import DeviceRequest

from harness.limits.cgroups import CGROUP_ROOT, RunCgroup
from harness.limits.gpu import GpuWatch, gpu_problem, load_nvml
from harness.limits.gpu.pids import cgroup_pids
from harness.runner.phase import PhaseSpec

# compute for CUDA, utility for nvidia-smi/NVML inside the container; nothing else of the driver.
CAPABILITIES = [["gpu", "compute", "utility"]]


def device_requests(gpu_ids: Sequence[str]) -> list[DeviceRequest]:
    """Exactly these GPUs (NVML indices or UUIDs), never "all"; none for a CPU phase."""
    if not gpu_ids:
        return []
    return [DeviceRequest(device_ids=list(gpu_ids), capabilities=CAPABILITIES)]


def gpu_environment(gpu_ids: Sequence[str]) -> dict[str, str]:
    """Overrides of an image's NVIDIA_* variables. Where the NVIDIA runtime is Docker's default, an image's
    NVIDIA_VISIBLE_DEVICES=all (the CUDA base images set it) would otherwise expose every GPU, even to a CPU phase."""
    if not gpu_ids:
        return {"NVIDIA_VISIBLE_DEVICES": "void"}
    return {"NVIDIA_VISIBLE_DEVICES": ",".join(gpu_ids), "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}


def local_gpu_ids(count: int, environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The first ``count`` GPUs this process may use, outside Ray: CUDA_VISIBLE_DEVICES's, else 0..count-1."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    ids = [i.strip() for i in visible.split(",") if i.strip()] if visible is not None else [str(i) for i in range(count)]
    return tuple(ids[:count])


def assignment_problem(spec: PhaseSpec, docker_runtimes: Collection[str]) -> str | None:
    """Why this node cannot give the phase its GPUs, or None (at once, without NVML, for a CPU phase)."""
    needed = spec.limits.gpus
    if not needed:
        return None
    if len(spec.gpu_ids) != needed:
        return f"it needs {needed} GPU(s) but was assigned {len(spec.gpu_ids)} ({', '.join(spec.gpu_ids) or 'none'})"
    return gpu_problem(needed, docker_runtimes)


def gpu_watch(spec: PhaseSpec, pids: Callable[[], Collection[int]]) -> GpuWatch | None:
    if not spec.gpu_ids:
        return None
    return GpuWatch(load_nvml(), spec.gpu_ids, pids, phase=spec.phase, limit=spec.limits.gpu_memory)


def container_pids(cgroup: RunCgroup, container: Any) -> set[int]:
    """A running container's host PIDs: from its parent cgroup when visible here, else ``docker top``."""
    if cgroup.available:
        rel = cgroup.parent.lstrip("/")
        return cgroup_pids(CGROUP_ROOT / rel if cgroup.v2 else CGROUP_ROOT / "pids" / rel)
    try:
        top = container.top()
    except docker.errors.APIError:
        return set()  # it exited meanwhile
    column = top["Titles"].index("PID")
    return {int(row[column]) for row in top.get("Processes") or []}


def gpu_figures(watch: GpuWatch | None, spec: PhaseSpec) -> dict[str, Any]:
    """The ``PhaseResult`` fields for GPUs: ids and peaks for the record, series for MLflow."""
    if watch is None:
        return {"gpu_ids": list(spec.gpu_ids)}
    return {
        "gpu_ids": list(spec.gpu_ids),
        "peak_gpu_memory_bytes": watch.peak_memory_bytes,
        "peak_gpu_utilization": watch.peak_utilization,
        "series": {
            "gpu_memory_bytes": [(s.at, s.memory_bytes) for s in watch.series],
            "gpu_utilization": [(s.at, s.utilization) for s in watch.series],
        },
    }
