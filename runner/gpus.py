"""A phase's GPUs: the exact ids it was assigned, as Docker device requests, watched through NVML."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import docker.errors
from docker.types import DeviceRequest

from harness.limits.cgroups import CGROUP_ROOT, ContainerCgroup, RunCgroup
from harness.limits.gpu import GpuWatch, gpu_problem, load_nvml
from harness.limits.gpu.pids import cgroup_pids
from harness.limits.gpu.toolkit import CDI_KIND, Toolkit
from harness.runner.phase import PhaseSpec

# compute for CUDA, utility for nvidia-smi/NVML inside the container; nothing else of the driver.
CAPABILITIES = [["gpu", "compute", "utility"]]
DRIVER_CAPABILITIES = "compute,utility"
# What the harness sets over an image's ENV in every phase, CPU phases included. The NVIDIA toolkit's
# hooks read these from the container's environment, as the host's root: each of the first four set to
# "enabled" mounts host devices or files (RDMA devices are not confined by ``network_mode: none``),
# IMEX channels are made as host device nodes, and the MIG variables make the hook refuse the
# container. The loader variables are loaded by those hooks (CVE-2025-23266, toolkit 1.17.7 and
# older); intake refuses an image that sets them, and this blanks them for any image that reaches a node.
TOOLKIT_ENVIRONMENT = {
    "NVIDIA_MOFED": "disabled",
    "NVIDIA_GDS": "disabled",
    "NVIDIA_GDRCOPY": "disabled",
    "NVIDIA_NVSWITCH": "disabled",
    "NVIDIA_IMEX_CHANNELS": "void",
    "NVIDIA_MIG_CONFIG_DEVICES": "",
    "NVIDIA_MIG_MONITOR_DEVICES": "",
    "LD_PRELOAD": "",
    "LD_AUDIT": "",
}


def device_requests(gpu_ids: Sequence[str], mode: str | None = "hook") -> list[DeviceRequest]:
    """Exactly these GPUs (NVML indices, UUIDs, MIG UUIDs), never "all"; none for a CPU phase. Through
    the toolkit's hook (Docker's GPU device requests), or as CDI devices (``nvidia.com/gpu=<id>``)."""
    if not gpu_ids:
        return []
    if mode == "cdi":
        return [DeviceRequest(driver="cdi", device_ids=[f"{CDI_KIND}={i}" for i in gpu_ids])]
    return [DeviceRequest(device_ids=list(gpu_ids), capabilities=CAPABILITIES)]


def gpu_environment(gpu_ids: Sequence[str]) -> dict[str, str]:
    """Overrides of an image's toolkit variables. Where the NVIDIA runtime is Docker's default, an image's
    NVIDIA_VISIBLE_DEVICES=all (the CUDA base images set it) would otherwise expose every GPU, even to a
    CPU phase; the rest (``TOOLKIT_ENVIRONMENT``) would inject host devices or load host-root code."""
    return {
        "NVIDIA_VISIBLE_DEVICES": ",".join(gpu_ids) if gpu_ids else "void",
        "NVIDIA_DRIVER_CAPABILITIES": DRIVER_CAPABILITIES,
        **TOOLKIT_ENVIRONMENT,
    }


def local_gpu_ids(count: int, environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The first ``count`` GPUs this process may use, outside Ray: CUDA_VISIBLE_DEVICES's, else 0..count-1."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    ids = [i.strip() for i in visible.split(",") if i.strip()] if visible is not None else [str(i) for i in range(count)]
    return tuple(ids[:count])


def assignment_problem(spec: PhaseSpec, engine_info: Mapping[str, Any], toolkit: Callable[[], Toolkit]) -> str | None:
    """Why this node cannot give the phase its GPUs, or None (at once, without NVML, for a CPU phase)."""
    needed = spec.limits.gpus
    if not needed:
        return None
    if len(spec.gpu_ids) != needed:
        return f"it needs {needed} GPU(s) but was assigned {len(spec.gpu_ids)} ({', '.join(spec.gpu_ids) or 'none'})"
    return gpu_problem(needed, engine_info, toolkit=lambda _info: toolkit())


def gpu_watch(spec: PhaseSpec, pids: Callable[[], Collection[int]]) -> GpuWatch | None:
    if not spec.gpu_ids:
        return None
    return GpuWatch(load_nvml(), spec.gpu_ids, pids, phase=spec.phase, limit=spec.limits.gpu_memory)


def container_pids(cgroup: RunCgroup, container: Any, own: ContainerCgroup | None = None) -> set[int]:
    """A running container's host PIDs: from its parent cgroup when visible here, else from its own cgroup
    (the systemd driver's, which the accounting located), else ``docker top`` (a ``ps`` through dockerd)."""
    if cgroup.available:
        rel = cgroup.parent.lstrip("/")
        return cgroup_pids(CGROUP_ROOT / rel if cgroup.v2 else CGROUP_ROOT / "pids" / rel)
    if own is not None and (directory := own.procs_directory()) is not None:
        return cgroup_pids(directory)
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
        "peak_gpu_memory_bytes": watch.peak_memory_bytes,  # None where NVML never answered: unknown, not 0
        "peak_gpu_utilization": watch.peak_utilization,
        "series": {
            "gpu_memory_bytes": [(s.at, s.memory_bytes) for s in watch.series],
            "gpu_utilization": [(s.at, s.utilization) for s in watch.series if s.utilization is not None],
        },
    }
