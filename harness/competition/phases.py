"""A competition's phases: each a share of the test pool, dates and a quota.

A competition declares its phases in ``competition.phases`` (``PhaseConfig``); one without any is one
implicit phase, as it always was (its test set ``data/test``, its labels ``hidden/labels.csv``, its
records without a ``phase``). A declared phase ``P`` owns the slice ``[test_start, test_start +
test_fraction)`` of the test pool: the data builder puts a test id in it by a keyed hash of the id
(``harness.competition.builders.digits``) and writes ``data/phases/P/test`` and
``hidden/phases/P/labels.csv``; starts follow the declaration order, so a slice never moves.

Submissions go to the open phase (``intake_phase``): the last one, not final and not superseded,
whose dates hold now. A final phase takes none: ``harness phase run`` evaluates the teams'
selections on its test set. A leak is answered by ``harness phase open`` (``open_phase``): a new
phase on an unused slice of the pool, which supersedes the open one; both are kept in
``<competition>/phases.json`` beside the data, the old phase's board stays, marked superseded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.util.clock import timestamp
from harness.util.errors import ConfigError, HarnessError
from harness.util.files import write_json_atomic

STATE_FILE = "phases.json"  # under the competition's root: the phases opened since, and the superseded ones
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"


@dataclass(frozen=True)
class Phase:
    name: str
    test_start: float  # its slice of the test pool: [test_start, test_start + test_fraction)
    test_fraction: float
    opens: datetime | None = None
    closes: datetime | None = None
    per_day: int | None = None  # None: the competition's quota
    final: bool = False
    opened_at: str | None = None  # opened by `harness phase open` (None: declared)
    superseded: Mapping[str, str] | None = None  # {"by", "at", "reason"} once a later phase replaced it

    def is_open(self, now: datetime) -> bool:
        """Whether it takes submissions at ``now``."""
        if self.final or self.superseded:
            return False
        return (self.opens is None or self.opens <= now) and (self.closes is None or now < self.closes)

    def builder_slice(self) -> dict[str, Any]:
        """What the data builder needs to write its test set."""
        return {"name": self.name, "test_start": self.test_start, "test_fraction": self.test_fraction, "final": self.final}

    def describe(self) -> dict[str, Any]:
        """The phase as data (``harness phase list --json``, the boards' JSON)."""
        return {
            "name": self.name,
            "final": self.final,
            "test_start": round(self.test_start, 6),
            "test_fraction": self.test_fraction,
            "opens": timestamp(self.opens) if self.opens else None,
            "closes": timestamp(self.closes) if self.closes else None,
            "per_day": self.per_day,
            "opened_at": self.opened_at,
            "superseded": dict(self.superseded) if self.superseded else None,
        }


def parse_time(raw: Any, key: str) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        raise ConfigError(f"{key}: must be an ISO 8601 time such as 2027-01-01T00:00:00Z, got {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def declared_phases(items: Iterable[Mapping[str, Any]], where: str = "competition.phases") -> tuple[Phase, ...]:
    """The checked phases of the configuration, with their slices of the test pool in declaration order."""
    phases, start = [], 0.0
    for i, item in enumerate(items):
        key = f"{where}[{i}]"
        opens, closes = parse_time(item.get("opens"), f"{key}.opens"), parse_time(item.get("closes"), f"{key}.closes")
        if opens and closes and closes <= opens:
            raise ConfigError(f"{key}.closes: must come after opens ({item.get('opens')}), got {item.get('closes')!r}")
        fraction = float(item["test_fraction"])
        phases.append(Phase(item["name"], start, fraction, opens, closes, item.get("per_day"), bool(item.get("final", False))))
        start += fraction
    _check_names(phases, where)
    if start > 1 + 1e-9:
        raise ConfigError(f"{where}: the phases' test_fraction add up to {start:g}; together they may take at most the whole test pool (1)")
    if phases and all(p.final for p in phases):
        raise ConfigError(f"{where}: every phase is final; declare at least one that takes submissions (final: false)")
    return tuple(phases)


def _check_names(phases: list[Phase], where: str) -> None:
    seen: set[str] = set()
    for phase in phases:
        if phase.name in seen:
            raise ConfigError(f"{where}: two phases are named {phase.name!r}; give each its own name")
        seen.add(phase.name)


def all_phases(declared: tuple[Phase, ...], root: Path) -> list[Phase]:
    """The declared phases and those opened since (``phases.json``), the superseded ones marked: the
    phases that take submissions first, in the order they came, then the final ones."""
    state = read_state(root)
    start = sum(p.test_fraction for p in declared)
    opened = []
    for item in state["opened"]:
        closes = parse_time(item.get("closes"), f"{STATE_FILE}: {item['name']}.closes")
        opened.append(Phase(item["name"], start, item["test_fraction"], None, closes, item.get("per_day"), False, item["opened_at"]))
        start += item["test_fraction"]
    marks = state["superseded"]
    every = [replace(p, superseded=marks.get(p.name)) for p in [*declared, *opened]]
    return [p for p in every if not p.final] + [p for p in every if p.final]


def read_state(root: Path) -> dict[str, Any]:
    path = Path(root) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"opened": [], "superseded": {}}
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path} cannot be read ({exc}); restore it from a backup: it says which phases were opened") from None
    return {"opened": list(data.get("opened", [])), "superseded": dict(data.get("superseded", {}))}


def open_phase(
    declared: tuple[Phase, ...],
    root: Path,
    name: str,
    test_fraction: float,
    *,
    reason: str,
    per_day: int | None = None,
    closes: str | None = None,
    now: datetime | None = None,
) -> Phase:
    """Open phase ``name`` on the next unused ``test_fraction`` of the test pool; the phase open now
    (if any) is superseded by it, its board kept and marked. Returns the new phase."""
    import re

    now = now or datetime.now(UTC)
    if not re.fullmatch(NAME_PATTERN, name):
        raise HarnessError(f"phase name {name!r}: use lower-case letters, digits, - or _ (at most 32), starting with a letter or digit")
    if not reason.strip():
        raise HarnessError("give a reason (--reason TEXT): it is kept with the superseded phase and shown on its board")
    phases = all_phases(declared, root)
    if not phases:
        raise HarnessError("this competition declares no phases (competition.phases); declare them before opening one")
    if any(p.name == name for p in phases):
        raise HarnessError(f"there is a phase {name!r} already; name the new one differently")
    used = sum(p.test_fraction for p in phases)
    if not 0 < test_fraction <= 1 - used + 1e-9:
        raise HarnessError(
            f"--test-fraction {test_fraction:g}: the phases take {used:g} of the test pool, so a new one may take at most {max(0.0, 1 - used):g}"
        )
    parse_time(closes, "--closes")
    moment = timestamp(now)
    state = read_state(root)
    state["opened"].append(
        {"name": name, "test_fraction": test_fraction, "per_day": per_day, "closes": closes, "opened_at": moment, "reason": reason}
    )
    for phase in phases:
        if phase.is_open(now):
            state["superseded"][phase.name] = {"by": name, "at": moment, "reason": reason}
    write_json_atomic(Path(root) / STATE_FILE, state)
    return next(p for p in all_phases(declared, root) if p.name == name)


def intake_phase(phases: list[Phase], now: datetime | None = None) -> Phase | None:
    """The phase a submission made ``now`` goes to: the last open one. None without phases; a
    HarnessError when the competition has phases and none is open."""
    if not phases:
        return None
    now = now or datetime.now(UTC)
    open_now = [p for p in phases if p.is_open(now)]
    if not open_now:
        states = "; ".join(f"{p.name}: {_why_closed(p, now)}" for p in phases)
        raise HarnessError(f"no phase takes submissions now ({states})")
    return open_now[-1]


def _why_closed(phase: Phase, now: datetime) -> str:
    if phase.final:
        return "final (it evaluates the teams' selections)"
    if phase.superseded:
        return f"superseded by {phase.superseded['by']}"
    if phase.opens and now < phase.opens:
        return f"opens {timestamp(phase.opens)}"
    return f"closed {timestamp(phase.closes)}" if phase.closes else "closed"


def board_phase(phases: list[Phase], *, finalized: bool = False, now: datetime | None = None) -> Phase | None:
    """The phase a board shows unless asked for another: once finalized the final phase (if any);
    before, the open one, else the last that took submissions."""
    if not phases:
        return None
    finals = [p for p in phases if p.final]
    if finalized and finals:
        return finals[-1]
    now = now or datetime.now(UTC)
    open_now = [p for p in phases if p.is_open(now)]
    return open_now[-1] if open_now else [p for p in phases if not p.final][-1]


def find_phase(phases: list[Phase], name: str | None) -> Phase | None:
    """Phase ``name`` (None: none asked), or a HarnessError listing the phases."""
    if name is None:
        return None
    for phase in phases:
        if phase.name == name:
            return phase
    known = ", ".join(p.name for p in phases) or "none: this competition declares no phases"
    raise HarnessError(f"no phase {name!r} (phases: {known})")
