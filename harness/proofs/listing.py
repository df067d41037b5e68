"""What the proofs ask the ledger about records besides which ones stand (``harness.results``): listing
a re-infer's new evaluation, whether the competition is final, which submissions were ended by a
decision."""

from __future__ import annotations

from harness.competition.core import Competition
from harness.submissions.ledger import MODERATED, Ledger
from harness.util.errors import HarnessError


def list_evaluation(competition: Competition, submission_id: str, evaluation_id: str) -> None:
    """Add a new evaluation (a re-infer's) to its submission's list, when the ledger knows the submission."""
    ledger = Ledger.of(competition)
    try:
        submission = ledger.get(submission_id)
    except HarnessError:
        return  # not the ledger's (a test's or a check's evaluation): nothing to list it under
    if evaluation_id not in submission.evaluations:
        submission.evaluations.append(evaluation_id)
        ledger.save(submission)


def refuse_after_finalize(competition: Competition, what: str, force: bool) -> str | None:
    """When the competition is finalized: a HarnessError unless ``force``; else the history's note
    for a forced ``what`` (None before finalize)."""
    finalized = Ledger.of(competition).finalized_at()
    if finalized is None:
        return None
    if not force:
        raise HarnessError(
            f"{competition.name} was finalized at {finalized}: {what} would change its final results; "
            f"pass --force to {what} anyway (each changed record lists it in its history)"
        )
    return f"{what} --force after finalize ({finalized})"


def moderated_submissions(competition: Competition) -> dict[str, str]:
    """{submission id: "withdrawn" or "disqualified"}: ended by a decision, never rescored or re-inferred."""
    return {s.id: s.state for s in Ledger.of(competition).all() if s.state in MODERATED}
