"""A submission's phase logs as the work directory holds them: the evaluation a round runs now (its
logs still growing), else the last recorded one. The service's logs endpoint and the organizer's
``harness logs --local`` both read them here, and a log cursor (``since``) is parsed here too."""

from __future__ import annotations

from harness.competition.paths import CompetitionPaths
from harness.runner import CursorError, PhaseLogs, parse_cursor, read_phase_logs
from harness.submissions.ledger import RUNNING, Submission

__all__ = ["CursorError", "parse_cursor", "submission_logs"]


def submission_logs(
    paths: CompetitionPaths, submission: Submission, phase: str, limit: int, since: tuple[int, int] | None = None
) -> tuple[str, PhaseLogs] | None:
    """The evaluation read and the phase's logs (``read_phase_logs``), or None when it left none (yet).
    ``running`` holds only while the ledger says a round runs that evaluation: a sidecar left by a
    round that died says nothing."""
    evaluation = submission.latest_evaluation
    if evaluation is None:
        return None
    logs = read_phase_logs(paths.run(evaluation).logs, phase, limit, since)
    if logs is None:
        return None
    logs.running = logs.running and submission.state == RUNNING and submission.evaluation == evaluation
    return evaluation, logs
