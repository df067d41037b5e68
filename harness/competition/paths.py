"""Where the harness keeps things: the work directory ($HARNESS_HOME, default ./.harness)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TELEMETRY_FILE = "telemetry.json"
# The work directory's one SQLite database: the ledger, the teams, the webhooks' outbox.
DATABASE = "ledger.sqlite3"


def harness_home() -> Path:
    return Path(os.environ.get("HARNESS_HOME") or ".harness").resolve()


@dataclass(frozen=True)
class CompetitionPaths:
    """The directories of one competition under the work directory.

    ``data/train`` and ``data/test`` are the only directories a container ever mounts;
    ``hidden`` (labels, split) sits beside them and is never mounted. The paths of a phase
    (``phase``; harness.competition.phases) have its own test set and labels:
    ``data/phases/<phase>/test`` and ``hidden/phases/<phase>/labels.csv``.
    """

    root: Path
    phase: str | None = None  # None: the competition's one implicit phase

    @classmethod
    def of(cls, name: str, home: Path | None = None) -> CompetitionPaths:
        return cls((home or harness_home()) / "competitions" / name)

    def of_phase(self, phase: str | None) -> CompetitionPaths:
        return CompetitionPaths(self.root, phase)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def train(self) -> Path:
        return self.data / "train"

    @property
    def test(self) -> Path:
        return self.data / "test" if self.phase is None else self.data / "phases" / self.phase / "test"

    @property
    def hidden(self) -> Path:
        return self.root / "hidden" if self.phase is None else self.root / "hidden" / "phases" / self.phase

    @property
    def labels(self) -> Path:
        """``id,<target>,split`` for every test id; split is ``public`` or ``private``."""
        return self.hidden / "labels.csv"

    @property
    def records(self) -> Path:
        return self.root / "records"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, evaluation_id: str) -> RunPaths:
        return RunPaths(self.runs / evaluation_id)


@dataclass(frozen=True)
class RunPaths:
    """One evaluation's directory (``runs/<evaluation id>``): the one place that knows its layout.

    ``model`` is what train wrote (mounted read-only into infer), ``output`` what infer wrote,
    ``logs`` the bounded logs of each phase, ``telemetry`` the series sampled while they ran.
    """

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def telemetry(self) -> Path:
        return self.root / TELEMETRY_FILE


@dataclass(frozen=True)
class ServicePaths:
    """What ``harness serve`` keeps for one competition (``<home>/service/<competition>``): the
    registry's storage, its issuer's key and certificate, its configuration, the organizer's pull
    credential and the pause flags (a flag file present: paused)."""

    root: Path

    @classmethod
    def of(cls, name: str, home: Path | None = None) -> ServicePaths:
        return cls((home or harness_home()) / "service" / name)

    @property
    def registry(self) -> Path:
        return self.root / "registry"

    @property
    def registry_auth(self) -> Path:
        return self.root / "registry-auth"

    @property
    def worker_token(self) -> Path:
        return self.root / "worker-token"

    def paused_flag(self, part: str) -> Path:
        """``paused-intake`` or ``paused-evaluation``."""
        return self.root / f"paused-{part}"
