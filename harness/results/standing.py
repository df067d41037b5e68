"""Which results stand, and the boards built from them.

A record stands for its submission when the ledger lists its evaluation for that submission and
the record is valid and, with a key configured, signed by the organizer; any other file in
``records/`` stands for nothing. Each submission counts with its latest standing record. The
private scores are shown once the competition is finalized, and before that only to the organizer
who asks for a preview. The command line (``leaderboard``, ``select``, ``finalize``), the service
(its board and a team's selection), the proofs (what the ledger lists) and the retention policy
(the submissions a private board chooses among) all ask here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from harness.competition.core import Competition
from harness.competition.phases import Phase, board_phase, find_phase
from harness.competition.rules import Rules
from harness.leaderboard.board import Attempt, Entry, build, final_candidates, history, latest_per_submission
from harness.leaderboard.columns import Column, table_columns
from harness.limits import Verdict
from harness.records.record import load_records, unlisted
from harness.results.uncertainty import with_uncertainty
from harness.scoring import Metric, get_metric
from harness.submissions.ledger import Ledger
from harness.util.errors import HarnessError

# An evaluation id -> its record once it proved valid and signed (None: it stands for nothing).
Reader = Callable[[str], dict[str, Any] | None]


def listing(ledger: Ledger) -> dict[str, list[str]]:
    """{submission id: the evaluation ids the ledger lists for it}, for every submission."""
    return {submission.id: list(submission.evaluations) for submission in ledger.all()}


@dataclass(frozen=True)
class Part:
    """Which scores a board shows: the private ones (``private``) or the public ones, of which phase."""

    private: bool
    finalized_at: str | None
    phase: Phase | None = None  # None: the competition declares no phases

    @property
    def name(self) -> str:
        return "private" if self.private else "public"

    @property
    def final(self) -> bool:
        return self.finalized_at is not None

    @property
    def title(self) -> str:
        return self._part_title + phase_title(self.phase)

    @property
    def _part_title(self) -> str:
        if not self.private:
            return "public leaderboard"
        if self.finalized_at:
            return f"private leaderboard (final, {self.finalized_at})"
        return "private leaderboard (preview: not finalized)"


def phase_title(phase: Phase | None) -> str:
    """``, phase development (superseded by dev2 at ...: why)``: which phase a board is, marked when superseded."""
    if phase is None:
        return ""
    mark = phase.superseded
    return f", phase {phase.name}" + (f" (superseded by {mark['by']} at {mark['at']}: {mark['reason']})" if mark else "")


class Results:
    """One competition's standing results. ``read`` reads a listed evaluation's checked record (the
    service's cache); without it, ``records`` reads the records folder and warns (``warn``) about
    each file that does not stand. Boards and histories are of one ``phase`` (a name; by default
    the open one, else the last: ``harness.competition.phases.board_phase``); without phases, of all."""

    def __init__(
        self,
        competition: Competition,
        ledger: Ledger | None = None,
        *,
        read: Reader | None = None,
        warn: Callable[[str], None] | None = None,
        phase: str | None = None,
    ) -> None:
        self.competition = competition
        self.ledger = ledger or Ledger.of(competition)
        phases = competition.phases
        self.phase = find_phase(phases, phase) or board_phase(phases, finalized=bool(phases) and self.ledger.finalized_at() is not None)
        self._read = read
        self._warn = warn

    @cached_property
    def metric(self) -> Metric:
        return get_metric(self.competition.settings.competition.primary_metric)

    @cached_property
    def others(self) -> list[Metric]:
        """The secondary metrics (``metrics.others``): shown on the boards, never ranked on."""
        return [get_metric(name) for name in self.competition.settings.competition.other_metrics]

    @cached_property
    def columns(self) -> list[Column]:
        """The boards' columns after the fixed ones (the CLI table, CSV, the HTML page): a secondary
        metric's score each, the score's interval, beats next, a resource each."""
        return table_columns((m.name, m.higher_is_better) for m in self.others)

    @cached_property
    def rules(self) -> Rules:
        return self.competition.settings.competition.rules

    def listing(self) -> dict[str, list[str]]:
        return listing(self.ledger)

    def records(self) -> list[dict[str, Any]]:
        """The standing records, in the order of their evaluation ids."""
        listed = self.listing()
        if self._read is None:
            return load_records(self.competition.paths.records, listed=listed, warn=self._warn)
        found = (self._read(evaluation_id) for evaluation_id in sorted(e for evaluations in listed.values() for e in evaluations))
        return [data for data in found if data is not None and unlisted(data, listed, strict=True) is None]

    def scored(self, records: Iterable[dict[str, Any]] | None = None) -> set[str]:
        """Ids of the submissions whose latest standing record is scored (what a team may select)."""
        records = self.records() if records is None else records
        return {r["submission"]["id"] for r in latest_per_submission(records) if r["verdict"] == Verdict.SCORED}

    def part(self, private: bool | None = None, *, organizer: bool = False) -> Part:
        """The scores a board shows: private once finalized, public before (``private`` asks for one);
        before finalize the private ones only for the ``organizer``'s preview."""
        finalized = self.ledger.finalized_at()
        private = finalized is not None if private is None else private
        if self.phase is not None and self.phase.final:
            private = True  # a final phase's test set is all private: its board is the private one
        if private and finalized is None and not organizer:
            name = self.competition.name
            raise HarnessError(
                f"the private scores of {name} are the organizer's until `harness finalize {name}`; "
                "an organizer previews them with --private --organizer"
            )
        return Part(private, finalized, self.phase)

    def of_phase(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records of the boards' phase (without phases: all of them)."""
        name = self.phase.name if self.phase is not None else None
        return [r for r in records if r.get("phase") == name]

    def history(self, records: Iterable[dict[str, Any]], part: Part) -> list[Attempt]:
        """Every submission with a standing record, oldest first; private scores only on a private part."""
        return history(self.of_phase(records), self.metric, self.ledger.selections(), reveal_private=part.private, others=self.others)

    def board(self, records: Iterable[dict[str, Any]], part: Part) -> list[Entry]:
        """One row per team, ranked by the competition's rule on ``part``'s scores (equal ones by its
        tie-breaker), each ranked row with its score's interval and its pair with the next row, over
        the phase's own test ids; on a final phase among every re-run of the team's selection (they
        are its selection)."""
        records = self.of_phase(records)
        selections: dict[str, list[str]] = {}
        if self.phase is not None and self.phase.final:
            for record in records:
                selections.setdefault(record["submission"]["team"], []).append(record["submission"]["id"])
        entries = build(
            records,
            self.metric,
            private=part.private,
            rule=self.rules.rule,
            selections=selections or self.ledger.selections(),
            fallback=self.rules.final_selections,
            others=self.others,
            tie_breaker=self.rules.tie_breaker,
        )
        scored_on = self.competition.for_phase(self.phase.name if self.phase is not None else None)
        return with_uncertainty(scored_on, entries, records, part.name, self.metric)

    def private_candidates(
        self,
        records: Iterable[dict[str, Any]],
        *,
        selections: Mapping[str, Sequence[str]] | None = None,
        rule: str | None = None,
        fallback: int | None = None,
    ) -> dict[str, list[str]]:
        """{team: the scored submissions its private board chooses among}: its selection, or (none
        given) its ``fallback`` best-public ones (rule ``best``) or latest ones (rule ``last``).
        By default the competition's own rule, fallback and the ledger's selections."""
        return final_candidates(
            records,
            self.metric,
            rule=self.rules.rule if rule is None else rule,
            selections=self.ledger.selections() if selections is None else selections,
            fallback=self.rules.final_selections if fallback is None else fallback,
        )
