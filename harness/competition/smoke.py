"""The smoke stage: a few training rows, run through train and infer before the full evaluation.

A competition that declares ``competition.smoke.enabled`` gets its smoke data carved from its
training data (never the test set) beside its own data, by the split rule the kit's dev split
uses (``kit.held_out``: the latest rows by ``split.time_column``, whole groups of
``split.group_column``, or at random), seeded by ``seed``::

    <competition>/smoke/data/train/     smoke.train_rows training rows, with the target (mounted as /data/train)
    <competition>/smoke/data/test/      smoke.test_rows other training rows, without it (mounted as /data/test)
    <competition>/smoke/labels/         their labels, labels.csv (never mounted)
    <competition>/smoke/manifests/      its data manifest's snapshots, named by the hash a record gives

A participant kit's smoke data is carved from the kit's training part, under the kit's work
directory. The data is written again only when what would be carved differs from what is there.
``smoke_stage`` carves and hashes each time it is called: a round works it out once and hands it
down (``harness.rounds.plan``), as ``harness check`` and an audit do for their evaluations.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.competition.core import Competition
from harness.competition.data_manifest import refresh
from harness.competition.kit import held_out, read_train_table, world_readable, write_split
from harness.competition.paths import CompetitionPaths
from harness.competition.schema import SmokeConfig
from harness.limits import PHASES, Limits, LimitsError, PhaseLimits
from harness.util.errors import ConfigError
from harness.util.hashing import listing_sha256, scan_tree

WHERE = "competition.smoke"


@dataclass(frozen=True)
class SmokePaths(CompetitionPaths):
    """The smoke data's directories: ``data/train`` and ``data/test`` as the competition's, the
    labels in ``labels/`` (a participant's smoke labels come from their own kit's training part)."""

    @property
    def hidden(self) -> Path:
        return self.root / "labels"


@dataclass(frozen=True)
class SmokeStage:
    """What the smoke stage runs on and under: its data's directories, its limits, its size."""

    paths: SmokePaths  # train, test and labels as for the competition, under <competition>/smoke
    limits: Limits
    train_rows: int
    test_ids: tuple[str, ...]
    data_sha256: str  # the smoke data's manifest hash (train, test and labels), as the record gives it

    @property
    def label(self) -> str:
        """How messages name it: ``smoke test (48 training rows, 32 inputs)``."""
        return f"smoke test ({self.train_rows} training rows, {len(self.test_ids)} inputs)"

    def to_record(self) -> dict[str, Any]:
        return {"train_rows": self.train_rows, "test_rows": len(self.test_ids), "data_sha256": self.data_sha256}


def smoke_config(competition: Competition) -> SmokeConfig:
    """``competition.smoke`` with the schema's defaults for what the configuration lacks (a record's
    configuration from before the smoke stage has none: disabled)."""
    return competition.settings.competition_config.smoke


def smoke_limits(config: SmokeConfig, full: Limits) -> Limits:
    """Each smoke phase's limits: its full phase's, with ``smoke.limits.<phase>``'s keys on top; never
    more wall-clock time than the full phase."""
    given = config.limits
    unknown = sorted(set(given) - set(PHASES))
    if unknown:
        raise ConfigError(f"{WHERE}.limits.{unknown[0]}: unknown phase (phases: {', '.join(PHASES)})")
    phases = {}
    for phase in PHASES:
        base = full.phase(phase)
        try:
            limits = PhaseLimits.from_mapping({**base.to_dict(), **(given.get(phase) or {})}, f"{WHERE}.limits.{phase}")
        except LimitsError as exc:
            raise ConfigError(str(exc)) from None
        phases[phase] = PhaseLimits(**{**limits.to_dict(), "wall_clock_s": min(limits.wall_clock_s, base.wall_clock_s)})
    return Limits(**phases)


def smoke_stage(competition: Competition) -> SmokeStage | None:
    """The competition's smoke stage with its data prepared, or None when it declares none."""
    config = smoke_config(competition)
    if not config.enabled:
        return None
    limits = smoke_limits(config, competition.settings.limits)
    paths, train_rows, test_ids = _prepare(competition)
    data_sha256 = refresh(paths.root, [paths.train, paths.test, paths.hidden]).sha256
    return SmokeStage(paths, limits, train_rows, test_ids, data_sha256)


def _prepare(competition: Competition) -> tuple[SmokePaths, int, tuple[str, ...]]:
    """Carve the smoke data and write it, unless what is there is the same already."""
    config = smoke_config(competition)
    settings = competition.settings
    id_column = settings.competition.predictions.id_column
    header, rows = read_train_table(competition)
    test_ids, _ = held_out(rows, settings, config.test_rows, "harness-smoke-test")
    rest = [r for r in rows if r[id_column] not in test_ids]
    train_ids, _ = held_out(rest, settings, config.train_rows, "harness-smoke-train")
    paths = SmokePaths(competition.paths.root / "smoke")
    paths.root.parent.mkdir(parents=True, exist_ok=True)
    fresh = SmokePaths(paths.root.parent / f".smoke-{secrets.token_hex(6)}")
    try:
        write_split(competition, header, rows, (train_ids, test_ids), (fresh.train, fresh.test, fresh.hidden))
        world_readable(fresh.data)
        if _content(fresh) != _content(paths):
            for part in (fresh.data, fresh.hidden):
                _replace(part, paths.root / part.name)
    finally:
        shutil.rmtree(fresh.root, ignore_errors=True)
    ordered = tuple(r[id_column] for r in rows if r[id_column] in test_ids)
    return paths, len(train_ids), ordered


def _content(paths: CompetitionPaths) -> str | None:
    if not paths.data.is_dir():
        return None
    files = {}
    for prefix, directory in (("data/", paths.data), ("labels/", paths.hidden)):
        files.update({p: e.digest for p, e in scan_tree(directory, prefix).items()})
    return listing_sha256(files)


def _replace(fresh: Path, target: Path) -> None:
    """Put ``fresh`` in ``target``'s place; the old data is moved aside first, then removed (the
    manifests' snapshots beside it stay)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".old-{target.name}-{secrets.token_hex(6)}")
    if target.exists():
        os.rename(target, old)
    try:
        os.rename(fresh, target)
    except OSError:  # another process put the same carve there meanwhile
        pass
    shutil.rmtree(old, ignore_errors=True)
