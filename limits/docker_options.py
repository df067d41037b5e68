"""Translate a phase's limits into Docker container options (plain data: the Docker backend in
``harness.runner`` hands them to the engine)."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from harness.limits.spec import PhaseLimits


def container_options(limits: PhaseLimits, *, runtime: str | None = None) -> dict[str, Any]:
    """Options for ``containers.create``: the isolation every phase gets, sized by its limits."""
    options: dict[str, Any] = {
        "network_mode": "none",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ipc_mode": "private",
        # Should the host itself run out of memory, the kernel kills a submission, not the harness.
        "oom_score_adj": 1000,
        "pids_limit": limits.pids,
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,  # equal to the memory limit: no swap
        "nano_cpus": int(limits.cpus * 1e9),
        "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmp},mode=1777"},
        "ulimits": [
            # One file can never outgrow the disk limit, even between two watchdog polls.
            {"name": "fsize", "soft": limits.disk, "hard": limits.disk},
            {"name": "core", "soft": 0, "hard": 0},
        ],
        # Logs are streamed by the runner with a cap; Docker keeps no copy on the host's disk.
        "log_config": {"type": "none", "config": {}},
    }
    if runtime:
        options["runtime"] = runtime
    return options


def runtime_problem(runtime: str | None, installed: Collection[str]) -> str | None:
    """Why ``runner.runtime`` cannot be used with this engine, or None (None: the engine's default)."""
    if not runtime or runtime in installed:
        return None
    return f"runner.runtime={runtime} is not a runtime of this Docker engine (it has: {', '.join(sorted(installed))})"


def thread_count(limits: PhaseLimits) -> int:
    """Threads a numerical library should use under the CPU limit."""
    return max(1, math.floor(limits.cpus))


def contract_environment(phase: str, limits: PhaseLimits, seed: int) -> dict[str, str]:
    """The only environment a container gets (plus the image's own ENV)."""
    threads = str(thread_count(limits))
    return {
        "HARNESS_PHASE": phase,
        "HARNESS_SEED": str(seed),
        "HARNESS_TIME_LIMIT_S": f"{limits.wall_clock_s:g}",
        "HARNESS_CPUS": f"{limits.cpus:g}",
        "HARNESS_MEMORY_BYTES": str(limits.memory),
        "HOME": "/tmp",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "VECLIB_MAXIMUM_THREADS": threads,
    }
