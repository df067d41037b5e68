"""The submissions of every competition in a work directory: one SQLite database in WAL mode.

Every write is one transaction, so a crash mid-write leaves the database as it was before the
write. Intake's quota check and insert share one ``BEGIN IMMEDIATE`` transaction: two concurrent
submissions cannot both take a team's last slot. The ledger also holds each team's final
selections, whether a competition is finalized, and which submissions were withdrawn (at their
team's request) or disqualified (by the organizer), with the reason and the time.

A database made by an earlier version (no withdrawn or disqualified state, no message, phase or
evaluation, quota_exempt, competition_phase or rerun_of column) is migrated in place, in one transaction, the first time it is opened. A file that is not a harness ledger (not SQLite,
truncated, another program's tables) is refused with one line naming it and what to do.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from harness.competition.paths import DATABASE
from harness.submissions.quota import WINDOW, check_quota
from harness.util.clock import timestamp
from harness.util.errors import HarnessError
from harness.util.sqlite import Connections, transaction


class SubmissionState(StrEnum):
    """Where a submission stands. The ledger alone changes it: ``start`` (pending to running),
    ``finish`` (to evaluated, with a verdict of its own), ``requeue`` (back to pending: the
    organizer's failure, a cancel, an abort), ``moderate`` (withdrawn or disqualified, for good) and
    ``cancel`` (a team withdraws its own queued submission: withdrawn, and not charged)."""

    PENDING = "pending"
    RUNNING = "running"
    EVALUATED = "evaluated"
    WITHDRAWN = "withdrawn"
    DISQUALIFIED = "disqualified"


PENDING, RUNNING, EVALUATED = SubmissionState.PENDING, SubmissionState.RUNNING, SubmissionState.EVALUATED
WITHDRAWN, DISQUALIFIED = SubmissionState.WITHDRAWN, SubmissionState.DISQUALIFIED
STATES = tuple(SubmissionState)
UNFINISHED = (PENDING, RUNNING)  # what a round evaluates, and what keeps finalize waiting
MODERATED = (WITHDRAWN, DISQUALIFIED)  # ended by a decision, never evaluated again
CANCELLED = "cancelled"  # the quota exemption (and the reason) of a submission its team cancelled while queued
MAX_REASON_LENGTH = 500
MAX_TEAM_LENGTH = 64
MAX_MESSAGE_LENGTH = 500
DB_NAME = DATABASE

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,
    competition TEXT NOT NULL,
    team TEXT NOT NULL,
    image TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'evaluated', 'withdrawn', 'disqualified')),
    evaluations TEXT NOT NULL DEFAULT '[]',
    infra_failures INTEGER NOT NULL DEFAULT 0,
    moderated_at TEXT,
    moderation_reason TEXT,
    message TEXT NOT NULL DEFAULT '',
    phase TEXT,
    evaluation TEXT,
    quota_exempt TEXT,
    competition_phase TEXT,
    rerun_of TEXT
);
CREATE INDEX IF NOT EXISTS submissions_by_team ON submissions (competition, team, submitted_at);
CREATE TABLE IF NOT EXISTS selections (
    competition TEXT NOT NULL,
    team TEXT NOT NULL,
    submission TEXT NOT NULL REFERENCES submissions (id),
    PRIMARY KEY (competition, team, submission)
);
CREATE TABLE IF NOT EXISTS finalized (competition TEXT PRIMARY KEY, finalized_at TEXT NOT NULL);
"""
COLUMNS = "id, competition, team, image, image_digest, submitted_at, state, evaluations, infra_failures, moderated_at, moderation_reason, message, phase, evaluation, quota_exempt, competition_phase, rerun_of"
# The columns of the first ledger version: a database with only these is migrated (``_migrate``).
V1_COLUMNS = ("id", "competition", "team", "image", "image_digest", "submitted_at", "state", "evaluations", "infra_failures")
# The columns a table must have for the database to be a harness ledger (of any version).
TABLES = {"submissions": V1_COLUMNS, "selections": ("competition", "team", "submission"), "finalized": ("competition", "finalized_at")}


@dataclass
class Submission:
    id: str
    competition: str
    team: str
    image: str
    image_digest: str
    submitted_at: str
    state: SubmissionState = PENDING
    evaluations: list[str] = field(default_factory=list)
    infra_failures: int = 0
    moderated_at: str | None = None  # when it was withdrawn or disqualified
    moderation_reason: str | None = None  # why (the team's request, or the organizer's decision)
    message: str = ""  # the team's note at submission
    phase: str | None = None  # the phase a round runs now (smoke train, smoke infer, train, infer), while running
    evaluation: str | None = None  # the evaluation a round runs now (its run directory holds the live logs), while running
    # Why it is not charged: "smoke" (the smoke stage ended it, and the competition did not charge
    # smoke failures when its verdict was recorded), "cancelled" (its team withdrew it while it was
    # queued: ``cancel``); None otherwise.
    quota_exempt: str | None = None
    # The competition's phase it was submitted to (harness.competition.phases); None: no phases declared.
    competition_phase: str | None = None
    # The submission a final phase re-runs (``harness phase run``): same team and image, never charged.
    rerun_of: str | None = None

    @property
    def charged(self) -> bool:
        """Whether it counts against the team's quota: always, unless the organizer's
        infrastructure failed it and it has no verdict of its own yet (``infra_failures`` > 0 and
        not ``evaluated``: pending again, or running its retry). Once a retry ends with any other
        verdict it is evaluated, and charged. A smoke failure is exempt (``quota_exempt``) unless the
        competition sets ``quota.charge_smoke_failures``."""
        return (self.infra_failures == 0 or self.state == EVALUATED) and self.quota_exempt is None

    @property
    def cancelled(self) -> bool:
        """Withdrawn by its team while it was queued (``Ledger.cancel``): never evaluated, not charged."""
        return self.state == WITHDRAWN and self.quota_exempt == CANCELLED

    @property
    def latest_evaluation(self) -> str | None:
        """The evaluation whose logs stand for it: the one a round runs now, else the last recorded."""
        if self.state == RUNNING and self.evaluation:
            return self.evaluation
        return self.evaluations[-1] if self.evaluations else None

    def describe(self) -> str:
        """``sub-… (team 'A', pending, 2 infrastructure failures)``: what an organizer needs to act on it."""
        failures = f", {self.infra_failures} infrastructure failure(s)" if self.infra_failures else ""
        return f"{self.id} (team {self.team!r}, {self.state}{failures})"


def validate_team(team: str) -> str:
    """The team name as stored (surrounding spaces removed), or a HarnessError saying what is wrong."""
    return _one_line_text(
        team, "the team name", MAX_TEAM_LENGTH, empty="the team name is empty; pass --team NAME", fix="use printable characters"
    )


def _one_line_text(value: str, what: str, limit: int, *, empty: str, fix: str) -> str:
    """``value`` without surrounding spaces, when it is not empty, at most ``limit`` characters and printable."""
    value = (value or "").strip()
    if not value:
        raise HarnessError(empty)
    if len(value) > limit:
        raise HarnessError(f"{what} is {len(value)} characters long; at most {limit} are allowed")
    hidden = next((ch for ch in value if not ch.isprintable()), None)
    if hidden is not None:
        raise HarnessError(f"{what} contains an invisible or control character (U+{ord(hidden):04X}); {fix}")
    return value


class Ledger:
    """One competition's view of the work directory's ledger (``<home>/ledger.sqlite3``)."""

    def __init__(self, home: Path, competition: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / DB_NAME
        self.competition = competition
        # a committed write survives a power cut too
        self._connections = Connections(self.path, lambda con: con.execute("PRAGMA synchronous=FULL"))
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
        with self._transaction(immediate=True) as con:
            self._check_tables(con)
            _migrate(con)
            for statement in filter(str.strip, SCHEMA.split(";")):
                con.execute(statement)

    @classmethod
    def of(cls, competition) -> Ledger:
        """The ledger of a :class:`harness.competition.Competition`."""
        return cls(competition.home, competition.name)

    def add(
        self,
        team: str,
        image: str,
        image_digest: str,
        *,
        per_day: int | None = None,
        message: str = "",
        now: datetime | None = None,
        competition_phase: str | None = None,
    ) -> Submission:
        """Queue a submission (to ``competition_phase``, whose quota ``per_day`` is); refused when the
        competition is finalized or the team's quota is used."""
        team, message, now = validate_team(team), validate_message(message), now or datetime.now(UTC)
        submission = Submission(
            f"sub-{secrets.token_hex(6)}",
            self.competition,
            team,
            image,
            image_digest,
            timestamp(now),
            message=message,
            competition_phase=competition_phase,
        )
        return self._queue(submission, per_day, now)

    def add_rerun(self, source: Submission, competition_phase: str, now: datetime | None = None) -> Submission:
        """Queue ``source`` again in ``competition_phase`` (a final phase's re-run of a selection): the
        same team and image, never charged; refused when the competition is finalized."""
        now = now or datetime.now(UTC)
        submission = dataclasses.replace(
            source,
            id=f"sub-{secrets.token_hex(6)}",
            submitted_at=timestamp(now),
            state=PENDING,
            evaluations=[],
            infra_failures=0,
            moderated_at=None,
            moderation_reason=None,
            phase=None,
            evaluation=None,
            message=f"{competition_phase} phase: re-run of {source.id}",
            quota_exempt="rerun",
            competition_phase=competition_phase,
            rerun_of=source.id,
        )
        return self._queue(submission, None, now)

    def _queue(self, submission: Submission, per_day: int | None, now: datetime) -> Submission:
        with self._transaction(immediate=True) as con:
            self._refuse_if_finalized(con, "takes no more submissions")
            if per_day is not None:
                check_quota(submission.team, self._charged(con, submission.team, now, submission.competition_phase), per_day, now)
            self._write(con, submission)
        return submission

    def check_quota(self, team: str, per_day: int | None, now: datetime | None = None, competition_phase: str | None = None) -> None:
        """``QuotaExceeded`` when the team could not submit now: asked before any work (a pull), and
        again by ``add``, which alone decides."""
        if per_day is not None:
            team, now = validate_team(team), now or datetime.now(UTC)
            with self._transaction() as con:
                check_quota(team, self._charged(con, team, now, competition_phase), per_day, now)

    def charged(self, team: str, now: datetime | None = None, competition_phase: str | None = None) -> list[datetime]:
        """When the team's charged submissions of the quota's window (the 24 hours before ``now``) came
        (with ``competition_phase``: that phase's)."""
        with self._connect() as con:
            return self._charged(con, team, now or datetime.now(UTC), competition_phase)

    def _charged(self, con: sqlite3.Connection, team: str, now: datetime, competition_phase: str | None = None) -> list[datetime]:
        """Charged submissions of the window; with ``competition_phase``, only that phase's (each phase has its quota)."""
        rows = con.execute(
            f"SELECT {COLUMNS} FROM submissions WHERE competition = ? AND team = ? AND submitted_at > ?",
            (self.competition, team, timestamp(now - WINDOW)),
        )
        found = [s for s in map(_submission, rows) if s.charged]
        return [
            datetime.fromisoformat(s.submitted_at) for s in found if competition_phase is None or s.competition_phase == competition_phase
        ]

    def save(self, submission: Submission) -> None:
        if submission.competition != self.competition:
            raise HarnessError(f"submission {submission.id} belongs to {submission.competition!r}, not {self.competition!r}")
        with self._transaction() as con:
            self._write(con, submission)

    def start(self, submission: Submission) -> bool:
        """A round takes ``submission``: running. False (and nothing written) when it is no longer
        pending or running: a cancel, withdrawal or disqualification that came first stands, and
        the round must not run it."""
        with self._transaction(immediate=True) as con:
            row = con.execute(
                "SELECT state FROM submissions WHERE id = ? AND competition = ?", (submission.id, self.competition)
            ).fetchone()
            if row is not None and row[0] not in UNFINISHED:
                submission.state = SubmissionState(row[0])
                return False
            submission.state = RUNNING
            self._write(con, submission)
        return True

    def cancel(self, team: str, submission_id: str, now: datetime | None = None) -> Submission:
        """The team withdraws its own queued submission: withdrawn (``CANCELLED``), never evaluated,
        not charged, out of any selection. ``NoSuchSubmission`` for an unknown id or another team's
        (the same words: nothing about others' submissions leaks); ``CannotCancel`` once a round
        took it (running), when it has a verdict or was ended already, or after finalize."""
        with self._transaction(immediate=True) as con:
            row = con.execute(
                f"SELECT {COLUMNS} FROM submissions WHERE id = ? AND competition = ?", (submission_id, self.competition)
            ).fetchone()
            if row is None or row[2] != team:
                raise NoSuchSubmission(f"your team has no submission {submission_id!r} in {self.competition}")
            submission = _submission(row)
            finalized = con.execute("SELECT finalized_at FROM finalized WHERE competition = ?", (self.competition,)).fetchone()
            if finalized:
                raise CannotCancel(f"{self.competition} was finalized at {finalized[0]}; nothing can be cancelled")
            if submission.state != PENDING:
                raise CannotCancel(_why_not_cancellable(submission))
            submission.state, submission.moderated_at = WITHDRAWN, timestamp(now or datetime.now(UTC))
            submission.moderation_reason, submission.quota_exempt = f"{CANCELLED} by its team while queued", CANCELLED
            con.execute(
                "UPDATE submissions SET state = ?, moderated_at = ?, moderation_reason = ?, quota_exempt = ?, phase = NULL, evaluation = NULL WHERE id = ?",
                (str(WITHDRAWN), submission.moderated_at, submission.moderation_reason, CANCELLED, submission_id),
            )
            con.execute("DELETE FROM selections WHERE competition = ? AND submission = ?", (self.competition, submission_id))
        return submission

    def finish(self, submission: Submission, evaluation_id: str, *, quota_exempt: str | None = None) -> None:
        """``submission`` has a verdict of its own, recorded as ``evaluation_id``: evaluated (charged,
        unless ``quota_exempt`` says why not). A withdrawal or disqualification that came while it
        ran stands (``_write`` keeps it); the evaluation is listed either way."""
        if evaluation_id not in submission.evaluations:
            submission.evaluations.append(evaluation_id)
        if quota_exempt is not None:
            submission.quota_exempt = quota_exempt
        self._move(submission, EVALUATED)

    def requeue(self, submission: Submission, evaluation_id: str | None = None) -> None:
        """``submission`` is pending again without a verdict of its own: a round was cancelled or
        stopped, or (given ``evaluation_id``, the evaluation that failed) the organizer's
        infrastructure failed it, which is counted and never charged."""
        if evaluation_id is not None:
            submission.evaluations.append(evaluation_id)
            submission.infra_failures += 1
        self._move(submission, PENDING)

    def _move(self, submission: Submission, state: SubmissionState) -> None:
        submission.state = state
        self.save(submission)

    def set_phase(self, submission_id: str, phase: str | None, evaluation: str | None = None) -> None:
        """Note the phase a round runs now for a running submission (None: between phases) and, given,
        the evaluation running it (kept between phases); leaving ``running`` clears both (``save``)."""
        with self._transaction() as con:
            con.execute(
                "UPDATE submissions SET phase = ?, evaluation = COALESCE(?, evaluation) WHERE id = ? AND state = ?",
                (phase, evaluation, submission_id, RUNNING),
            )

    def get(self, submission_id: str) -> Submission:
        with self._connect() as con:
            row = con.execute(
                f"SELECT {COLUMNS} FROM submissions WHERE id = ? AND competition = ?", (submission_id, self.competition)
            ).fetchone()
        if row is None:
            raise HarnessError(f"no submission {submission_id!r} in competition {self.competition!r}")
        return _submission(row)

    def all(self) -> list[Submission]:
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {COLUMNS} FROM submissions WHERE competition = ? ORDER BY submitted_at, rowid", (self.competition,)
            ).fetchall()
        return [_submission(row) for row in rows]

    def of_team(self, team: str) -> list[Submission]:
        """The team's submissions, newest first."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {COLUMNS} FROM submissions WHERE competition = ? AND team = ? ORDER BY submitted_at DESC, rowid DESC",
                (self.competition, team),
            ).fetchall()
        return [_submission(row) for row in rows]

    def queue_position(self, submission: Submission) -> int:
        """1-based place of a pending submission among the pending ones (oldest first)."""
        with self._connect() as con:
            (before,) = con.execute(
                "SELECT COUNT(*) FROM submissions WHERE competition = ? AND state = ? AND (submitted_at < ? OR "
                "(submitted_at = ? AND rowid < (SELECT rowid FROM submissions WHERE id = ?)))",
                (self.competition, PENDING, submission.submitted_at, submission.submitted_at, submission.id),
            ).fetchone()
        return before + 1

    def pending(self) -> list[Submission]:
        # A submission left "running" belongs to a round that died: it is pending again. A withdrawn
        # or disqualified one is never evaluated again.
        return [s for s in self.all() if s.state in UNFINISHED]

    def select(self, team: str, submission_ids: list[str], *, limit: int, scored: set[str]) -> None:
        """Make ``submission_ids`` (scored ones of ``team``) its final selection, replacing an earlier one."""
        team, chosen = validate_team(team), list(dict.fromkeys(submission_ids))
        if not chosen:
            raise HarnessError("name at least one submission to select")
        if len(chosen) > limit:
            raise HarnessError(f"{len(chosen)} submissions selected; a team may select at most {limit}")
        with self._transaction(immediate=True) as con:
            self._refuse_if_finalized(con, "takes no more selections")
            if con.execute("SELECT 1 FROM submissions WHERE competition = ? AND rerun_of IS NOT NULL", (self.competition,)).fetchone():
                raise HarnessError(f"the final phase of {self.competition} has run on the teams' selections; they can no longer change")
            for sid in chosen:
                row = con.execute(
                    "SELECT team, state FROM submissions WHERE id = ? AND competition = ?", (sid, self.competition)
                ).fetchone()
                if row is None or row[0] != team:
                    raise HarnessError(f"team {team!r} has no submission {sid!r} in {self.competition}")
                if row[1] in MODERATED:
                    raise HarnessError(f"{sid} was {row[1]}; only submissions still in the competition can be selected")
                if sid not in scored:
                    raise HarnessError(f"{sid} is not scored; only scored submissions can be selected")
            con.execute("DELETE FROM selections WHERE competition = ? AND team = ?", (self.competition, team))
            con.executemany("INSERT INTO selections VALUES (?, ?, ?)", [(self.competition, team, sid) for sid in chosen])

    def selections(self) -> dict[str, list[str]]:
        """Each team's selected submission ids (teams that selected none are absent)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT team, submission FROM selections WHERE competition = ? ORDER BY team, submission", (self.competition,)
            ).fetchall()
        chosen: dict[str, list[str]] = {}
        for team, sid in rows:
            chosen.setdefault(team, []).append(sid)
        return chosen

    def finalize(self, now: datetime | None = None) -> str:
        """Close the competition: no more submissions or selections; the private board is final.
        Refused while a submission waits for its evaluation."""
        with self._transaction(immediate=True) as con:
            self._refuse_if_finalized(con, "is final already")
            waiting = [
                _submission(row)
                for row in con.execute(
                    f"SELECT {COLUMNS} FROM submissions WHERE competition = ? AND state IN (?, ?) ORDER BY submitted_at, rowid",
                    (self.competition, *UNFINISHED),
                )
            ]
            if waiting:
                named = "; ".join(s.describe() for s in waiting[:10]) + (f"; and {len(waiting) - 10} more" if len(waiting) > 10 else "")
                first = waiting[0].id
                raise HarnessError(
                    f"{len(waiting)} submission(s) of {self.competition} are not evaluated yet: {named}. "
                    f"Evaluate them with `harness round {self.competition}`, or end one that cannot be evaluated with "
                    f"`harness withdraw {self.competition} {first} --reason TEXT` (at its team's request) or "
                    f"`harness disqualify {self.competition} {first} --reason TEXT` (the organizer's decision)"
                )
            moment = timestamp(now or datetime.now(UTC))
            con.execute("INSERT INTO finalized VALUES (?, ?)", (self.competition, moment))
        return moment

    def finalized_at(self) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT finalized_at FROM finalized WHERE competition = ?", (self.competition,)).fetchone()
        return row[0] if row else None

    def moderate(self, submission_id: str, state: str, reason: str, now: datetime | None = None) -> Submission:
        """Withdraw (``state`` WITHDRAWN, at its team's request) or disqualify (DISQUALIFIED, the
        organizer's decision) a submission, with ``reason``: it is never evaluated again, drops out
        of the final selections, and no longer keeps ``finalize`` waiting.

        A withdrawal is for a submission without a verdict of its own (pending, running, stuck after
        its infrastructure retries): an evaluated one stands (the organizer may disqualify it)."""
        if state not in MODERATED:
            raise ValueError(f"state must be one of {MODERATED}, got {state!r}")
        reason = validate_reason(reason)
        with self._transaction(immediate=True) as con:
            row = con.execute(
                f"SELECT {COLUMNS} FROM submissions WHERE id = ? AND competition = ?", (submission_id, self.competition)
            ).fetchone()
            if row is None:
                raise HarnessError(f"no submission {submission_id!r} in competition {self.competition!r}")
            submission = _submission(row)
            if submission.state in MODERATED:
                raise HarnessError(
                    f"{submission_id} was {submission.state} at {submission.moderated_at} ({submission.moderation_reason}); it stays so"
                )
            if state == WITHDRAWN:
                self._refuse_if_finalized(con, "takes no more withdrawals")
                if submission.state == EVALUATED:
                    raise HarnessError(
                        f"{submission_id} is evaluated already and its verdict stands: a team may withdraw only a submission "
                        f"that has none yet; the organizer may disqualify it (`harness disqualify {self.competition} {submission_id} --reason TEXT`)"
                    )
            submission.state, submission.moderated_at, submission.moderation_reason = (
                SubmissionState(state),
                timestamp(now or datetime.now(UTC)),
                reason,
            )
            con.execute(
                "UPDATE submissions SET state = ?, moderated_at = ?, moderation_reason = ? WHERE id = ?",
                (str(state), submission.moderated_at, reason, submission_id),
            )
            con.execute("DELETE FROM selections WHERE competition = ? AND submission = ?", (self.competition, submission_id))
        return submission

    def _check_tables(self, con: sqlite3.Connection) -> None:
        """Refuse a database that is not a harness ledger (another program's tables of the same names)."""
        for table, columns in TABLES.items():
            found = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
            missing = [c for c in columns if c not in found]
            if found and missing:
                raise HarnessError(
                    f"{self.path} is not a harness ledger: its table {table} has no column {', '.join(missing)}; "
                    f"point HARNESS_HOME at the work directory it belongs to, or move it aside "
                    f"(mv {self.path} {self.path}.foreign) to start an empty ledger"
                )

    def _refuse_if_finalized(self, con: sqlite3.Connection, what: str) -> None:
        row = con.execute("SELECT finalized_at FROM finalized WHERE competition = ?", (self.competition,)).fetchone()
        if row:
            raise HarnessError(f"{self.competition} was finalized at {row[0]} and {what}")

    @staticmethod
    def _write(con: sqlite3.Connection, s: Submission) -> None:
        # A withdrawal or disqualification is final: a round that was running the submission when it
        # came keeps its state (and only adds its evaluation).
        con.execute(
            "INSERT INTO submissions (id, competition, team, image, image_digest, submitted_at, state, evaluations, infra_failures, message, quota_exempt, competition_phase, rerun_of) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            f"state = CASE WHEN submissions.state IN {tuple(map(str, MODERATED))!r} THEN submissions.state ELSE excluded.state END, "
            "evaluations = excluded.evaluations, infra_failures = excluded.infra_failures, quota_exempt = excluded.quota_exempt, "
            # the phase is set_phase's; a submission that is not running has none
            f"phase = CASE WHEN excluded.state = '{RUNNING}' AND submissions.state = '{RUNNING}' THEN submissions.phase ELSE NULL END, "
            f"evaluation = CASE WHEN excluded.state = '{RUNNING}' AND submissions.state = '{RUNNING}' THEN submissions.evaluation ELSE NULL END",
            (
                s.id,
                s.competition,
                s.team,
                s.image,
                s.image_digest,
                s.submitted_at,
                str(s.state),
                json.dumps(s.evaluations),
                s.infra_failures,
                s.message,
                s.quota_exempt,
                s.competition_phase,
                s.rerun_of,
            ),
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connections.open() as con:
                yield con
        except sqlite3.DatabaseError as exc:  # cannot open, not a database, damaged, another program's tables, or locked for 30 s
            raise self._unusable(exc) from None

    def _unusable(self, exc: sqlite3.Error) -> HarnessError:
        reason = str(exc)
        if "locked" in reason or "busy" in reason:
            fix = "another harness command holds it; wait for it to end and run this again"
        elif "no such" in reason or "has no column" in reason:
            fix = f"it is not a harness ledger; point HARNESS_HOME at the work directory it belongs to, or move it aside (mv {self.path} {self.path}.foreign)"
        else:
            fix = (
                f"the file is damaged or not a SQLite database; restore it from a backup (with its -wal file), "
                f"or move it aside (mv {self.path} {self.path}.damaged) to start an empty ledger, which loses the submissions it held"
            )
        return HarnessError(f"the ledger {self.path} cannot be used ({reason}): {fix}")

    def transaction(self, immediate: bool = False):
        """One transaction on the work directory's database (the teams table shares it)."""
        return self._transaction(immediate)

    @contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        with self._connect() as con, transaction(con, immediate=immediate):
            yield con


class NoSuchSubmission(HarnessError):
    """No such submission of the caller's team (an unknown id and another team's read the same)."""


class CannotCancel(HarnessError):
    """The submission exists and is the team's, but is past being cancelled; the message says why."""


def _why_not_cancellable(s: Submission) -> str:
    if s.state == RUNNING:
        return f"{s.id} is running ({s.phase or 'between phases'}): only a queued submission can be cancelled; its verdict will stand"
    if s.state == EVALUATED:
        return f"{s.id} is evaluated already: only a queued submission can be cancelled; its verdict stands"
    if s.cancelled:
        return f"{s.id} was cancelled at {s.moderated_at} already"
    return f"{s.id} was {s.state} at {s.moderated_at} ({s.moderation_reason}): only a queued submission can be cancelled"


def validate_reason(reason: str) -> str:
    """A withdrawal's or disqualification's reason as stored, or a HarnessError saying what is wrong."""
    return _one_line_text(
        reason,
        "the reason",
        MAX_REASON_LENGTH,
        empty="give a reason (--reason TEXT): it is kept in the ledger and in the submission's records",
        fix="write it on one line",
    )


def validate_message(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """A submission's message as stored (surrounding spaces removed; may be empty), or a HarnessError
    saying what is wrong: at most 500 characters, no control or format characters (one line)."""
    message = (message or "").strip()
    if len(message) > limit:
        raise HarnessError(f"the message is {len(message)} characters long; at most {limit} are allowed")
    hidden = next((ch for ch in message if unicodedata.category(ch) in ("Cc", "Cf")), None)
    if hidden is not None:
        raise HarnessError(
            f"the message contains a control or invisible character (U+{ord(hidden):04X}); write it on one line, in plain text"
        )
    return message


def _migrate(con: sqlite3.Connection) -> None:
    """Bring an earlier ``submissions`` table to this version, inside the caller's transaction. The
    first version (three states, no moderation columns): SQLite cannot widen a CHECK constraint in
    place, so the table is copied into a new one (the documented way: create, copy, drop, rename).
    The second (no message or phase), the third (no evaluation), the fourth (no quota_exempt) and the fifth (no competition_phase
    or rerun_of): the columns are added."""
    found = [row[1] for row in con.execute("PRAGMA table_info(submissions)")]
    if not found:
        return
    if "moderation_reason" not in found:
        con.execute("CREATE TABLE submissions_v2" + SCHEMA.split("CREATE TABLE IF NOT EXISTS submissions", 1)[1].split(";", 1)[0])
        con.execute(f"INSERT INTO submissions_v2 ({', '.join(V1_COLUMNS)}) SELECT {', '.join(V1_COLUMNS)} FROM submissions")
        con.execute("DROP TABLE submissions")
        con.execute("ALTER TABLE submissions_v2 RENAME TO submissions")
        return
    if "message" not in found:
        con.execute("ALTER TABLE submissions ADD COLUMN message TEXT NOT NULL DEFAULT ''")
        con.execute("ALTER TABLE submissions ADD COLUMN phase TEXT")
    if "evaluation" not in found:
        con.execute("ALTER TABLE submissions ADD COLUMN evaluation TEXT")
    if "quota_exempt" not in found:
        con.execute("ALTER TABLE submissions ADD COLUMN quota_exempt TEXT")
    if "competition_phase" not in found:
        con.execute("ALTER TABLE submissions ADD COLUMN competition_phase TEXT")
        con.execute("ALTER TABLE submissions ADD COLUMN rerun_of TEXT")


def _submission(row: tuple) -> Submission:
    (
        *head,
        state,
        evaluations,
        infra_failures,
        moderated_at,
        moderation_reason,
        message,
        phase,
        evaluation,
        quota_exempt,
        competition_phase,
        rerun_of,
    ) = row
    return Submission(
        *head,
        state=SubmissionState(state),
        evaluations=json.loads(evaluations),
        infra_failures=infra_failures,
        moderated_at=moderated_at,
        moderation_reason=moderation_reason,
        message=message,
        phase=phase,
        evaluation=evaluation,
        quota_exempt=quota_exempt,
        competition_phase=competition_phase,
        rerun_of=rerun_of,
    )
