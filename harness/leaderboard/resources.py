"""What a submission used, read from its record's phases: the resources a board row shows beside its score.

``RESOURCES`` (the schema's, so that ``leaderboard.tie_breaker`` is checked against the same names):
``train_wall_s`` and ``infer_wall_s`` (each phase's wall time), ``cpu_s`` (both phases' CPU
seconds), ``peak_memory_bytes`` (the larger phase peak), ``gpu_s`` (each GPU phase's wall time times
the GPUs it was given) and ``peak_gpu_memory_bytes`` (the larger GPU peak NVML measured). A value
is None where no phase measured it (``gpu_s`` for a CPU-only submission).
"""

from __future__ import annotations

import math
from typing import Any

from harness.competition.schema import RESOURCES

__all__ = ["RESOURCES", "resources", "used"]


def resources(record: dict[str, Any]) -> dict[str, float | None]:
    """The record's ``RESOURCES``, in that order."""
    phases = record.get("phases") or {}
    train, infer = phases.get("train") or {}, phases.get("infer") or {}
    ran = [p for p in (train, infer) if p]
    gpus = [p for p in ran if p.get("gpu_ids")]
    gpu_peaks = [p["peak_gpu_memory_bytes"] for p in gpus if p.get("peak_gpu_memory_bytes") is not None]
    return {
        "train_wall_s": train.get("wall_s"),
        "infer_wall_s": infer.get("wall_s"),
        "cpu_s": sum(p.get("cpu_s") or 0.0 for p in ran) if ran else None,
        "peak_memory_bytes": max(p.get("peak_memory_bytes") or 0 for p in ran) if ran else None,
        "gpu_s": sum(p.get("wall_s", 0.0) * len(p["gpu_ids"]) for p in gpus) if gpus else None,
        "peak_gpu_memory_bytes": max(gpu_peaks) if gpu_peaks else None,
    }


def used(values: dict[str, float | None], name: str | None) -> float:
    """The resource ``name`` as a sort key: less first, unmeasured last (0.0 for every row without one)."""
    if name is None:
        return 0.0
    value = values.get(name)
    return math.inf if value is None else float(value)
