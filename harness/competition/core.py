"""A competition as the harness runs it: its settings, its data on disk, its hidden labels."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from harness.competition.config import Settings
from harness.competition.data_manifest import DataManifest, refresh
from harness.competition.paths import CompetitionPaths, harness_home
from harness.competition.phases import Phase, all_phases, find_phase, intake_phase
from harness.scoring import LabelsError, load_labels
from harness.util.errors import ConfigError, HarnessError
from harness.util.plugins import load_target, plugins


@dataclass
class Competition:
    settings: Settings
    paths: CompetitionPaths
    home: Path

    @classmethod
    def load(cls, settings: Settings, home: Path | None = None) -> Competition:
        home = home or harness_home()
        return cls(settings, CompetitionPaths.of(settings.competition.name, home), home)

    @property
    def name(self) -> str:
        return self.settings.competition.name

    @property
    def phase(self) -> str | None:
        """The phase this view evaluates and scores (None: the implicit one of a competition without phases)."""
        return self.paths.phase

    @property
    def phases(self) -> list[Phase]:
        """The declared phases and those opened since (harness.competition.phases); empty: none declared."""
        return all_phases(self.settings.competition.phases, self.paths.root) if self.settings.competition.phases else []

    def for_phase(self, name: str | None) -> Competition:
        """The competition as phase ``name`` sees it: its test set and labels (None: the implicit phase)."""
        if name is not None:
            find_phase(self.phases, name)
        return self if name == self.phase else Competition(self.settings, self.paths.of_phase(name), self.home)

    def intake(self) -> tuple[str | None, int | None]:
        """The phase a submission made now goes to (None: no phases) and its quota per day; a
        HarnessError when the competition has phases and none takes submissions now."""
        per_day = self.settings.competition.rules.per_day
        phase = intake_phase(self.phases)
        if phase is None:
            return None, per_day
        return phase.name, per_day if phase.per_day is None else phase.per_day

    def ensure_data(self) -> None:
        """Prepare the data on first use (the builder is a no-op once it is complete): with phases,
        every phase's test set (``phases=``, which a builder that cannot carve them refuses)."""
        prepare = data_builder(self.settings.competition.prepare)
        options: dict[str, Any] = {"public_fraction": self.settings.competition.public_fraction}
        if takes_competition(prepare):
            options["competition"] = OmegaConf.to_container(self.settings.raw.competition, resolve=True)
        phases = [p.builder_slice() for p in self.phases]
        if phases:
            if "phases" not in inspect.signature(prepare).parameters:
                raise ConfigError(
                    f"competition.phases: the data builder {self.settings.competition.prepare!r} does not build phases' test sets "
                    "(it takes no phases= argument); use one that does, such as digits, or declare no phases"
                )
            options["phases"] = phases
        prepare(self.paths.root, **options)
        views = [self.paths.of_phase(p["name"]) for p in phases] or [self.paths]
        for path in (self.paths.train, *(p for v in views for p in (v.test, v.labels))):
            if not path.exists():
                raise HarnessError(f"the competition data is incomplete: {path} is missing")

    @cached_property
    def data_manifest(self) -> DataManifest:
        """Every data file's hash (train, test and the hidden labels), read once per process."""
        return refresh(self.paths.root, [self.paths.train, self.paths.test, self.paths.hidden])

    @property
    def data_sha256(self) -> str:
        return self.data_manifest.sha256

    @cached_property
    def labels(self) -> tuple[list[str], dict[str, str], dict[str, str]]:
        spec = self.settings.competition.predictions
        try:
            return load_labels(self.paths.labels, spec.id_column, spec.target_column)
        except (OSError, LabelsError) as exc:
            raise HarnessError(f"the hidden labels cannot be read: {exc}") from None

    @property
    def test_ids(self) -> list[str]:
        return self.labels[0]


BUILDERS_GROUP = "harness.competitions"


def takes_competition(builder: Callable[..., None]) -> bool:
    """Whether a data builder reads the competition's configuration (a ``competition`` keyword)."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return False
    return "competition" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def data_builder(target: str) -> Callable[..., None]:
    """The function that writes a competition's data: a builder registered under ``target`` in the
    ``harness.competitions`` entry point group (``tables``, ``files``, ``digits``, ``diabetes``), or
    a ``module.path:function``. It is called as ``prepare(root, public_fraction=...)``, and with
    ``competition=`` (the competition's configuration, a plain mapping) when it takes that keyword."""
    builders = plugins(BUILDERS_GROUP)
    try:
        return builders[target].load() if target in builders else load_target(target)
    except (ImportError, AttributeError):
        known = ", ".join(sorted(builders)) or "none"
        raise ConfigError(
            f"competition.prepare: {target!r} is neither a registered data builder (registered: {known}) "
            "nor an importable module.path:function"
        ) from None
