"""Can this machine run a phase that needs GPUs in Docker? Asked only for phases that do."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection

from harness.limits.gpu.nvml import Nvml, NvmlError, load_nvml

HOOK = "nvidia-container-runtime-hook"  # what Docker's built-in GPU device requests run


def gpu_problem(
    needed: int,
    docker_runtimes: Collection[str],
    *,
    load: Callable[[], Nvml] = load_nvml,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """What is missing (NVML, enough GPUs, the NVIDIA container runtime), or None when nothing is."""
    if needed <= 0:
        return None
    problems = []
    try:
        count = load().device_count()
    except NvmlError as exc:
        problems.append(str(exc))
    else:
        if count < needed:
            problems.append(f"NVML sees only {count} GPU(s) here")
    if "nvidia" not in docker_runtimes and which(HOOK) is None:
        problems.append(
            f"Docker has no NVIDIA container runtime (no 'nvidia' runtime in `docker info`, no {HOOK} on PATH); "
            "install the NVIDIA Container Toolkit"
        )
    if not problems:
        return None
    return f"it needs {needed} GPU(s), but " + "; and ".join(problems)
