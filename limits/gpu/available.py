"""Can this machine run a phase that needs GPUs in Docker? Asked only for phases that do."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.limits.gpu.nvml import Nvml, NvmlError, load_nvml
from harness.limits.gpu.toolkit import Toolkit, find_toolkit


def gpu_problem(
    needed: int,
    engine_info: Mapping[str, Any],
    *,
    load: Callable[[], Nvml] = load_nvml,
    toolkit: Callable[[Mapping[str, Any]], Toolkit] = find_toolkit,
) -> str | None:
    """What is missing (NVML, enough GPUs or MIG devices, a recent NVIDIA Container Toolkit), or None."""
    if needed <= 0:
        return None
    problems = []
    try:
        count = len(load().devices())  # a GPU in MIG mode counts its MIG devices, each one a device
    except NvmlError as exc:
        problems.append(str(exc))
    else:
        if count < needed:
            problems.append(f"NVML sees only {count} GPU(s) or MIG device(s) here")
    if problem := toolkit(engine_info).problem():
        problems.append(problem)
    if not problems:
        return None
    return f"it needs {needed} GPU(s), but " + "; and ".join(problems)
