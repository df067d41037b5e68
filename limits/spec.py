"""The ``Limits`` spec: what each phase of a submission may use."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.util.fields import parse_fields
from harness.util.sizes import parse_size

PHASES = ("train", "infer")


class LimitsError(ValueError):
    """A limit in the configuration is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class PhaseLimits:
    cpus: float = 1.0
    memory: int = 2 * 1024**3
    gpus: int = 0
    gpu_memory: int | None = None
    wall_clock_s: float = 600.0
    pids: int = 256
    disk: int = 1024**3
    files: int = 10_000
    log_bytes: int = 1024**2
    tmp: int = 64 * 1024**2

    _SIZES = ("memory", "gpu_memory", "disk", "log_bytes", "tmp")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str) -> PhaseLimits:
        parsed = parse_fields(cls, values, where, _parse, LimitsError, noun="limit")
        return cls(**parsed)

    def __post_init__(self) -> None:
        if self.cpus <= 0:
            raise LimitsError(f"cpus must be positive, got {self.cpus}")
        if self.wall_clock_s <= 0:
            raise LimitsError(f"wall_clock_s must be positive, got {self.wall_clock_s}")
        if self.memory < 6 * 1024**2:
            raise LimitsError(f"memory must be at least 6m (Docker's minimum), got {self.memory} bytes")
        if self.pids < 1 or self.files < 1 or self.gpus < 0:
            raise LimitsError("pids and files must be at least 1, gpus at least 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse(key: str, raw: Any) -> Any:
    if key in PhaseLimits._SIZES:
        return None if raw is None else parse_size(raw)
    if key in ("cpus", "wall_clock_s"):
        return float(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
        raise ValueError(f"{raw!r} is not a whole number")
    return int(raw)


@dataclass(frozen=True)
class Limits:
    train: PhaseLimits = field(default_factory=PhaseLimits)
    infer: PhaseLimits = field(default_factory=PhaseLimits)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "limits") -> Limits:
        unknown = sorted(set(values) - set(PHASES))
        if unknown:
            raise LimitsError(f"{where}.{unknown[0]}: unknown phase (phases: {', '.join(PHASES)})")
        return cls(**{p: PhaseLimits.from_mapping(values.get(p) or {}, f"{where}.{p}") for p in PHASES})

    def phase(self, name: str) -> PhaseLimits:
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {p: self.phase(p).to_dict() for p in PHASES}
