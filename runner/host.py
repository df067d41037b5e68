"""What the host running a phase is: CPU, memory, kernel, engine, GPUs and driver.

On a Ray cluster each phase's record carries the facts of the node that ran it, measured there
(``phases.<phase>.host``); the record's ``manifest.host`` is the driver's machine."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil


@lru_cache(maxsize=4)
def host_info(docker_version: str = "") -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_cores": psutil.cpu_count(logical=True),
        "memory_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "os": platform.platform(),
        "docker_version": docker_version,
        **gpu_info(),
    }


def engine_facts(info: Mapping[str, Any]) -> dict[str, Any]:
    """The Docker engine's version, data root and cgroup layout from its ``docker info``, as a node's engine reports them."""
    facts = {
        "docker_version": info.get("ServerVersion", ""),
        "docker_root_dir": info.get("DockerRootDir", ""),
        "cgroup_version": str(info.get("CgroupVersion", "")),
        "cgroup_driver": info.get("CgroupDriver", ""),
    }
    return {key: value for key, value in facts.items() if value}


def gpu_info() -> dict[str, Any]:
    """The GPU driver and devices through NVML; nothing on a host without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library: a CPU host
        return {}
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                {
                    "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
                    "memory_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                }
            )
        return {"gpu_driver": _text(pynvml.nvmlSystemGetDriverVersion()), "gpus": gpus}
    except pynvml.NVMLError:
        return {}
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
