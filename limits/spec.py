"""The ``Limits`` spec: what each phase of a submission may use.

``LimitsConfig`` is the config group ``limits`` as written (sizes as text, e.g. ``2g``): the one
place where its keys, types and defaults live. ``harness.competition.schema`` stores it in Hydra's
ConfigStore; ``PhaseLimits`` and ``Limits`` are the checked, typed form the rest of the code uses,
and take their defaults from it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.util.fields import parse_fields
from harness.util.sizes import format_size, parse_size

PHASES = ("train", "infer")


class LimitsError(ValueError):
    """A limit in the configuration is missing or malformed; the message names the key."""


@dataclass
class PhaseLimitsConfig:
    """One phase's limits as the config writes them. Sizes accept 512m, 2g, ... (binary units) or bytes."""

    cpus: float = 1.0  # CPUs the container may use (a share: 0.5, 2)
    memory: Any = "2g"  # memory and swap together; at least 6m (Docker's minimum)
    gpus: int = 0  # GPUs handed to the container (device requests with Ray's GPU ids)
    gpu_memory: Any = None  # GPU memory the phase may use; null: no cap
    wall_clock_s: float = 600.0  # seconds before the phase is stopped (TIMEOUT)
    pids: int = 256  # processes and threads at once
    disk: Any = "1g"  # bytes the phase may write to its writable directory
    files: int = 10_000  # files the phase may create there
    log_bytes: Any = "1m"  # stdout and stderr kept, each
    tmp: Any = "64m"  # size of the /tmp tmpfs


def _infer_defaults() -> PhaseLimitsConfig:
    return PhaseLimitsConfig(wall_clock_s=300.0, disk="256m", files=1000)


@dataclass
class LimitsConfig:
    """The config group ``limits``: one ``PhaseLimitsConfig`` per phase."""

    train: PhaseLimitsConfig = field(default_factory=PhaseLimitsConfig)
    infer: PhaseLimitsConfig = field(default_factory=_infer_defaults)


_SIZES = ("memory", "gpu_memory", "disk", "log_bytes", "tmp")
_NUMBERS = ("cpus", "wall_clock_s")


def _parse(key: str, raw: Any) -> Any:
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError(f"must be a finite number, got {raw}")
    if key in _SIZES:
        return None if raw is None else parse_size(raw)
    if key in _NUMBERS:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise ValueError(f"{raw!r} is not a number")
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {raw!r}")
        return value
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).strip().removeprefix("-").isdigit():
        raise ValueError(f"{raw!r} is not a whole number")
    return int(raw)  # a negative one is refused by PhaseLimits.problem, naming the key


_DEFAULT = {key: _parse(key, value) for key, value in dataclasses.asdict(PhaseLimitsConfig()).items()}


@dataclass(frozen=True)
class PhaseLimits:
    """One phase's limits, checked: sizes in bytes. Defaults: ``PhaseLimitsConfig``'s (the train phase's)."""

    cpus: float = _DEFAULT["cpus"]
    memory: int = _DEFAULT["memory"]
    gpus: int = _DEFAULT["gpus"]
    gpu_memory: int | None = _DEFAULT["gpu_memory"]
    wall_clock_s: float = _DEFAULT["wall_clock_s"]
    pids: int = _DEFAULT["pids"]
    disk: int = _DEFAULT["disk"]
    files: int = _DEFAULT["files"]
    log_bytes: int = _DEFAULT["log_bytes"]
    tmp: int = _DEFAULT["tmp"]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str, defaults: PhaseLimitsConfig | None = None) -> PhaseLimits:
        """Checked limits from ``values``; a key it lacks takes its value from ``defaults``."""
        parsed = parse_fields(cls, values, where, _parse, LimitsError, noun="limit")
        if defaults is not None:
            base = parse_fields(cls, dataclasses.asdict(defaults), where, _parse, LimitsError, noun="limit")
            parsed = {**base, **parsed}
        try:
            return cls(**parsed)
        except LimitsError as exc:
            raise LimitsError(f"{where}.{exc}") from None

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise LimitsError(f"{problem[0]}: {problem[1]}")

    def problem(self) -> tuple[str, str] | None:
        """The first limit out of range as ``(key, message)``, or None."""
        if not math.isfinite(self.cpus) or self.cpus <= 0:
            return "cpus", f"cpus must be positive and finite (a share of CPUs, e.g. 0.5 or 2), got {self.cpus}"
        if not math.isfinite(self.wall_clock_s) or self.wall_clock_s <= 0:
            return "wall_clock_s", f"must be a positive, finite number of seconds, got {self.wall_clock_s}"
        if self.memory < 6 * 1024**2:
            return "memory", f"must be at least 6m (Docker's minimum), got {format_size(self.memory)}"
        for key in ("pids", "files"):
            if getattr(self, key) < 1:
                return key, f"must be at least 1, got {getattr(self, key)}"
        if self.gpus < 0:
            return "gpus", f"must be 0 or more, got {self.gpus}"
        for key in ("disk", "tmp"):  # a tmpfs of size 0 would have no cap at all
            if getattr(self, key) < 1:
                return key, f"must be at least 1 byte, got {getattr(self, key)}"
        if self.log_bytes < 0:
            return "log_bytes", f"must be 0 or more bytes, got {self.log_bytes}"
        if self.gpu_memory is not None and self.gpu_memory < 1:
            return "gpu_memory", f"must be at least 1 byte, or null for no cap, got {self.gpu_memory}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _phase_defaults(phase: str) -> PhaseLimits:
    return PhaseLimits.from_mapping({}, f"limits.{phase}", getattr(LimitsConfig(), phase))


@dataclass(frozen=True)
class Limits:
    """The checked limits of both phases; defaults: ``LimitsConfig``'s."""

    train: PhaseLimits = field(default_factory=lambda: _phase_defaults("train"))
    infer: PhaseLimits = field(default_factory=lambda: _phase_defaults("infer"))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "limits") -> Limits:
        """Checked limits from a mapping like the ``limits`` group; a key it lacks takes ``LimitsConfig``'s default."""
        unknown = sorted(set(values) - set(PHASES))
        if unknown:
            raise LimitsError(f"{where}.{unknown[0]}: unknown phase (phases: {', '.join(PHASES)})")
        defaults = LimitsConfig()
        return cls(**{p: PhaseLimits.from_mapping(values.get(p) or {}, f"{where}.{p}", getattr(defaults, p)) for p in PHASES})

    def phase(self, name: str) -> PhaseLimits:
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {p: self.phase(p).to_dict() for p in PHASES}
