"""The submissions of every competition in a work directory: one SQLite database in WAL mode.

Every write is one transaction, so a crash mid-write leaves the database as it was before the
write. Intake's quota check and insert share one ``BEGIN IMMEDIATE`` transaction: two concurrent
submissions cannot both take a team's last slot. The ledger also holds each team's final
selections and whether a competition is finalized.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.submissions.quota import WINDOW, check_quota
from harness.util.clock import timestamp
from harness.util.errors import HarnessError

PENDING, RUNNING, EVALUATED = "pending", "running", "evaluated"
MAX_TEAM_LENGTH = 64
DB_NAME = "ledger.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,
    competition TEXT NOT NULL,
    team TEXT NOT NULL,
    image TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'evaluated')),
    evaluations TEXT NOT NULL DEFAULT '[]',
    infra_failures INTEGER NOT NULL DEFAULT 0
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
COLUMNS = "id, competition, team, image, image_digest, submitted_at, state, evaluations, infra_failures"


@dataclass
class Submission:
    id: str
    competition: str
    team: str
    image: str
    image_digest: str
    submitted_at: str
    state: str = PENDING
    evaluations: list[str] = field(default_factory=list)
    infra_failures: int = 0

    @property
    def charged(self) -> bool:
        """Whether it counts against the team's quota: always, unless the organizer's
        infrastructure failed it and it has no verdict of its own yet (``infra_failures`` > 0 and
        not ``evaluated``: pending again, or running its retry). Once a retry ends with any other
        verdict it is evaluated, and charged."""
        return self.infra_failures == 0 or self.state == EVALUATED

    def summary(self) -> dict:
        return {"id": self.id, "team": self.team, "image": self.image, "image_digest": self.image_digest, "submitted_at": self.submitted_at}


def validate_team(team: str) -> str:
    """The team name as stored (surrounding spaces removed), or a HarnessError saying what is wrong."""
    team = team.strip()
    if not team:
        raise HarnessError("the team name is empty; pass --team NAME")
    if len(team) > MAX_TEAM_LENGTH:
        raise HarnessError(f"the team name is {len(team)} characters long; at most {MAX_TEAM_LENGTH} are allowed")
    hidden = next((ch for ch in team if not ch.isprintable()), None)
    if hidden is not None:
        raise HarnessError(f"the team name contains an invisible or control character (U+{ord(hidden):04X}); use printable characters")
    return team


class Ledger:
    """One competition's view of the work directory's ledger (``<home>/ledger.sqlite3``)."""

    def __init__(self, home: Path, competition: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / DB_NAME
        self.competition = competition
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)

    @classmethod
    def of(cls, competition) -> Ledger:
        """The ledger of a :class:`harness.competition.Competition`."""
        return cls(competition.home, competition.name)

    def add(self, team: str, image: str, image_digest: str, *, per_day: int | None = None, now: datetime | None = None) -> Submission:
        """Queue a submission; refused when the competition is finalized or the team's quota is used."""
        team, now = validate_team(team), now or datetime.now(UTC)
        submission = Submission(f"sub-{secrets.token_hex(6)}", self.competition, team, image, image_digest, timestamp(now))
        with self._transaction(immediate=True) as con:
            self._refuse_if_finalized(con, "takes no more submissions")
            if per_day is not None:
                rows = con.execute(
                    f"SELECT {COLUMNS} FROM submissions WHERE competition = ? AND team = ? AND submitted_at > ?",
                    (self.competition, team, timestamp(now - WINDOW)),
                )
                charged = [datetime.fromisoformat(s.submitted_at) for s in map(_submission, rows) if s.charged]
                check_quota(team, charged, per_day, now)
            self._write(con, submission)
        return submission

    def save(self, submission: Submission) -> None:
        if submission.competition != self.competition:
            raise HarnessError(f"submission {submission.id} belongs to {submission.competition!r}, not {self.competition!r}")
        with self._transaction() as con:
            self._write(con, submission)

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
                f"SELECT {COLUMNS} FROM submissions WHERE competition = ? ORDER BY submitted_at, id", (self.competition,)
            ).fetchall()
        return [_submission(row) for row in rows]

    def pending(self) -> list[Submission]:
        # A submission left "running" belongs to a round that died: it is pending again.
        return [s for s in self.all() if s.state in (PENDING, RUNNING)]

    def select(self, team: str, submission_ids: list[str], *, limit: int, scored: set[str]) -> None:
        """Make ``submission_ids`` (scored ones of ``team``) its final selection, replacing an earlier one."""
        team, chosen = validate_team(team), list(dict.fromkeys(submission_ids))
        if not chosen:
            raise HarnessError("name at least one submission to select")
        if len(chosen) > limit:
            raise HarnessError(f"{len(chosen)} submissions selected; a team may select at most {limit}")
        with self._transaction(immediate=True) as con:
            self._refuse_if_finalized(con, "takes no more selections")
            for sid in chosen:
                row = con.execute("SELECT team FROM submissions WHERE id = ? AND competition = ?", (sid, self.competition)).fetchone()
                if row is None or row[0] != team:
                    raise HarnessError(f"team {team!r} has no submission {sid!r} in {self.competition}")
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
                row[0]
                for row in con.execute(
                    "SELECT id FROM submissions WHERE competition = ? AND state != ? ORDER BY submitted_at", (self.competition, EVALUATED)
                )
            ]
            if waiting:
                raise HarnessError(
                    f"{len(waiting)} submission(s) of {self.competition} are not evaluated yet "
                    f"({', '.join(waiting[:5])}); run `harness round {self.competition}` first"
                )
            moment = timestamp(now or datetime.now(UTC))
            con.execute("INSERT INTO finalized VALUES (?, ?)", (self.competition, moment))
        return moment

    def finalized_at(self) -> str | None:
        with self._connect() as con:
            row = con.execute("SELECT finalized_at FROM finalized WHERE competition = ?", (self.competition,)).fetchone()
        return row[0] if row else None

    def _refuse_if_finalized(self, con: sqlite3.Connection, what: str) -> None:
        row = con.execute("SELECT finalized_at FROM finalized WHERE competition = ?", (self.competition,)).fetchone()
        if row:
            raise HarnessError(f"{self.competition} was finalized at {row[0]} and {what}")

    @staticmethod
    def _write(con: sqlite3.Connection, s: Submission) -> None:
        con.execute(
            f"INSERT INTO submissions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, evaluations = excluded.evaluations, infra_failures = excluded.infra_failures",
            (s.id, s.competition, s.team, s.image, s.image_digest, s.submitted_at, s.state, json.dumps(s.evaluations), s.infra_failures),
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")  # a committed write survives a power cut too
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")


def _submission(row: tuple) -> Submission:
    *head, evaluations, infra_failures = row
    return Submission(*head, evaluations=json.loads(evaluations), infra_failures=infra_failures)
