"""Ending a submission by a decision: withdrawn (at its team's request) or disqualified (by the
organizer), with a reason, so that the organizer can always end a competition.

The ledger records the state, the reason and the time (``Ledger.moderate``); a round never
evaluates such a submission again, and ``finalize`` no longer waits for it. Each record of the
submission the ledger names gets the decision noted: its outcome so far moves into its
``history`` (``reason`` ``withdrawn: …`` or ``disqualified: …``), its scores are cleared (so no
leaderboard ranks it) and its message says who ended it and why. The verdict stays what the
evaluation found. Records are rewritten through ``load_record``/``save_record``: validated, and
signed again when a key is configured (a record whose signature fails is left alone and named).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.competition.core import Competition
from harness.records.record import EvaluationRecord, load_record, save_record
from harness.submissions.ledger import DISQUALIFIED, MODERATED, WITHDRAWN, Ledger, Submission
from harness.util.errors import HarnessError

WHO = {WITHDRAWN: "withdrawn at its team's request", DISQUALIFIED: "disqualified by the organizer"}

__all__ = ["DISQUALIFIED", "WITHDRAWN", "Moderation", "moderate", "note_record", "note_records"]


@dataclass
class Moderation:
    submission: Submission
    noted: list[str] = field(default_factory=list)  # the evaluations whose records now say so
    not_noted: dict[str, str] = field(default_factory=dict)  # evaluation id -> why its record was left as it is


def moderate(competition: Competition, submission_id: str, state: str, reason: str) -> Moderation:
    """Withdraw or disqualify ``submission_id`` with ``reason`` and note it in each of its records."""
    submission = Ledger.of(competition).moderate(submission_id, state, reason)
    noted, problems = note_records(competition.paths.records, submission)
    return Moderation(submission, noted, problems)


def note_records(directory: Path, submission: Submission, evaluations: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Note ``submission``'s state (withdrawn or disqualified) in the records of ``evaluations``
    (default: every evaluation the ledger names). Returns the ids noted and, for the others, why not."""
    if submission.state not in MODERATED:
        raise ValueError(f"{submission.id} is {submission.state}, neither withdrawn nor disqualified")
    noted, problems = [], {}
    for evaluation_id in submission.evaluations if evaluations is None else evaluations:
        path = directory / f"{evaluation_id}.json"
        if not path.is_file():
            problems[evaluation_id] = f"its record {path} is missing"
            continue
        try:
            record = load_record(path)
            if record.submission.id != submission.id:
                raise HarnessError(f"record {path.name} belongs to {record.submission.id!r}, not {submission.id}")
            if note_record(record, submission):
                save_record(record, directory)
        except (OSError, ValueError, HarnessError) as exc:
            problems[evaluation_id] = str(exc)
            continue
        noted.append(evaluation_id)
    return noted, problems


def note_record(record: EvaluationRecord, submission: Submission) -> bool:
    """Move the record's outcome into its history with the decision as the reason, clear its scores,
    say so in its message. False when the record says so already (noting twice changes nothing)."""
    reason = f"{submission.state}: {submission.moderation_reason}"
    if any(entry.get("reason") == reason for entry in record.history):
        return False
    record.history.append(
        {
            "replaced_at": submission.moderated_at,
            "reason": reason,
            "verdict": record.verdict,
            "failed_phase": record.failed_phase,
            "message": record.message,
            "scores": record.scores,
        }
    )
    record.scores = {}
    record.message = f"{WHO[submission.state]} at {submission.moderated_at}: {submission.moderation_reason}"
    return True
