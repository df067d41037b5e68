"""The webhooks' outbox: one row per notification and receiver, in the work directory's database.

A round must never wait on a receiver's network: its record sink (``harness.records.sinks.OutboxSink``) only inserts a
record's notifications, one row per webhook, in one transaction. The service's delivery worker
(``harness.service.notify``) sends the due rows, retries a failed attempt with backoff and marks
each row delivered or, after its last attempt, failed. The rows live in the ledger's SQLite file
(their own table), so a restart of the service takes up what was pending, and ``harness webhooks
list|retry`` shows and resends them.

What is notified: a round's verdict (event ``verdict``: SCORED, or the participant's failure) and,
for a webhook that asks for it, a verdict or scores that ``harness rescore`` replaced (event
``rescore``). INFRA_ERROR is not a verdict: the organizer's infrastructure failed, the submission
is pending again, and its next evaluation is notified. Records a round did not make (an audit's
re-run, a re-inference) are the organizer's proofs, not news for a team. A body carries the public
scores only: never the private ones, the logs, the image, or any text the submission wrote (its
message is the harness's summary of the verdict, ``verdict_summary``).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.competition.core import Competition
from harness.competition.paths import DATABASE
from harness.competition.schema import WebhookConfig
from harness.limits import Verdict
from harness.records.record import EvaluationRecord
from harness.util.clock import utc_now
from harness.util.errors import HarnessError
from harness.util.sqlite import transaction

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    competition TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    secret_env TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, due_at);
"""


@dataclass
class Delivery:
    """One notification to one receiver; ``id`` is the ``X-Harness-Delivery`` header (receivers de-duplicate on it)."""

    id: str
    competition: str
    event: str
    url: str
    secret_env: str
    body: str  # the JSON sent, byte for byte (the signature covers it)
    state: str
    attempts: int
    due_at: float  # seconds since 1970: when the next attempt may start
    created_at: str
    updated_at: str
    last_error: str

    def view(self) -> dict[str, Any]:
        """What the organizer sees (never the secret, which is not here anyway: only its variable's name)."""
        body = json.loads(self.body)
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("body", "due_at")}
        return {**shown, "submission": body.get("submission"), "verdict": body.get("verdict")}


COLUMNS = ", ".join(f.name for f in fields(Delivery))


def webhooks(competition: Competition) -> list[WebhookConfig]:
    """The competition's ``competition.webhooks``, each with its defaults."""
    return competition.settings.competition_config.webhooks


def notification(record: EvaluationRecord, event: str) -> dict[str, Any]:
    """The body of a record's notification: its verdict and public scores, nothing private, and
    nothing the submission wrote."""
    public = record.scores.get("public") if record.verdict == Verdict.SCORED else None
    return {
        "event": event,
        "competition": record.competition,
        "submission": record.submission.id,
        "team": record.submission.team,
        "verdict": record.verdict,
        "message": verdict_summary(record),
        "public_score": dict(public) if public else None,
        "failed_phase": record.failed_phase,
        "evaluated_at": record.created_at,
    }


def verdict_summary(record: EvaluationRecord) -> str:
    """The verdict in the harness's own words. A record's ``message`` quotes what the submission
    wrote (its output's last lines, its entrypoint, its predictions' ids), which is never sent to
    an organizer's channel: the team reads it on its own page."""
    if record.verdict == Verdict.SCORED:
        return "scored"
    if record.verdict == Verdict.INVALID_IMAGE:
        return "the image was refused at intake"
    if record.verdict == Verdict.INVALID_PREDICTIONS:
        return "the predictions were refused when scored"
    phase = record.failed_phase or "a"
    failed = record.phases.ran().get(record.failed_phase or "")
    exit_code = failed.exit_code if failed is not None else None
    if record.verdict == Verdict.RUNTIME_ERROR and exit_code is not None:
        return f"the {phase} phase failed (exit code {exit_code})"
    return f"the {phase} phase ended {record.verdict}"


class Outbox:
    """One competition's rows of the outbox table (``<home>/ledger.sqlite3``)."""

    def __init__(self, home: Path, competition: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path, self.competition = home / DATABASE, competition
        with self._transaction() as con:
            for statement in filter(str.strip, SCHEMA.split(";")):
                con.execute(statement)

    @classmethod
    def of(cls, competition: Competition) -> Outbox:
        return cls(competition.home, competition.name)

    def add(self, event: str, body: dict[str, Any], hooks: list[WebhookConfig]) -> list[str]:
        """Queue ``body`` for each of ``hooks`` that takes ``event``, due now, in one transaction; their ids."""
        text, now = json.dumps(body, separators=(",", ":"), sort_keys=True), utc_now()
        rows = [
            (f"dlv-{secrets.token_hex(8)}", self.competition, event, hook.url, hook.secret_env, text, PENDING, 0, time.time(), now, now, "")
            for hook in hooks
            if event in hook.events
        ]
        with self._transaction() as con:
            con.executemany(f"INSERT INTO outbox ({COLUMNS}) VALUES ({', '.join('?' * len(fields(Delivery)))})", rows)
        return [row[0] for row in rows]

    def due(self, limit: int = 20) -> list[Delivery]:
        """Pending rows whose next attempt is due, oldest first."""
        return self._select(f"state = '{PENDING}' AND due_at <= ? ORDER BY due_at, rowid LIMIT ?", (time.time(), limit))

    def all(self, state: str | None = None) -> list[Delivery]:
        """Every row (or those in ``state``), oldest first."""
        if state is None:
            return self._select("1 ORDER BY rowid", ())
        return self._select("state = ? ORDER BY rowid", (state,))

    def get(self, delivery_id: str) -> Delivery:
        found = self._select("id = ?", (delivery_id,))
        if not found:
            raise HarnessError(
                f"no webhook delivery {delivery_id!r} in competition {self.competition!r}; `harness webhooks list` shows them"
            )
        return found[0]

    def delivered(self, delivery_id: str) -> None:
        self._update(delivery_id, "state = ?, attempts = attempts + 1, last_error = ''", (DELIVERED,))

    def attempt_failed(self, delivery_id: str, error: str, retry_at: float | None) -> None:
        """One more failed attempt; due again at ``retry_at`` (seconds since 1970), or failed for good with None."""
        if retry_at is None:
            self._update(delivery_id, "state = ?, attempts = attempts + 1, last_error = ?", (FAILED, error))
        else:
            self._update(delivery_id, "attempts = attempts + 1, last_error = ?, due_at = ?", (error, retry_at))

    def retry(self, delivery_ids: list[str]) -> list[str]:
        """Send failed rows again (``delivery_ids``, or every failed one), due now with their attempts counted from 0."""
        chosen = [self.get(i) for i in delivery_ids] if delivery_ids else self.all(FAILED)
        for delivery in chosen:
            if delivery.state == DELIVERED:
                raise HarnessError(
                    f"{delivery.id} was delivered at {delivery.updated_at}; only failed or pending deliveries are sent again"
                )
        with self._transaction() as con:
            con.executemany(
                "UPDATE outbox SET state = ?, attempts = 0, due_at = ?, updated_at = ? WHERE id = ?",
                [(PENDING, time.time(), utc_now(), d.id) for d in chosen],
            )
        return [d.id for d in chosen]

    def _select(self, where: str, params: tuple) -> list[Delivery]:
        with self._connect() as con:
            rows = con.execute(f"SELECT {COLUMNS} FROM outbox WHERE competition = ? AND {where}", (self.competition, *params)).fetchall()
        return [Delivery(*row) for row in rows]

    def _update(self, delivery_id: str, assignments: str, params: tuple) -> None:
        with self._transaction() as con:
            con.execute(
                f"UPDATE outbox SET {assignments}, updated_at = ? WHERE id = ? AND competition = ?",
                (*params, utc_now(), delivery_id, self.competition),
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                con.execute("PRAGMA journal_mode=WAL")  # as the ledger: readers never wait on the round's writes
                con.execute("PRAGMA synchronous=FULL")
                yield con
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise HarnessError(f"the webhooks' outbox in {self.path} cannot be used ({exc})") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con, transaction(con, immediate=True):
            yield con
