"""``harness rescore``: every score computed again from the stored predictions, no container run.

For when the metric (or its configuration) was wrong. A record is rescored with the current
configuration when its predictions are still the ones it hashed and the test labels are still the
ones it was scored on (a replaced test set needs ``harness reinfer`` instead). A record whose
verdict or scores change keeps what it had in its ``history``; its MLflow run gets the new scores
as the next step of each score's series. After ``finalize`` a rescore changes final results: it
is refused unless forced, and a forced one is named in each changed record's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.competition.core import Competition
from harness.competition.data_manifest import changes_since
from harness.evaluation.evaluation import score_file
from harness.limits import Verdict
from harness.proofs.listing import moderated_submissions, refuse_after_finalize
from harness.records.artifacts import stored_predictions
from harness.records.record import EvaluationRecord, records_to_rewrite
from harness.records.sinks import RecordSinks
from harness.results import Results
from harness.util.clock import utc_now
from harness.util.hashing import regular_file_sha256


def scoring_data(competition: Competition) -> tuple[str, ...]:
    """What scoring reads besides the predictions: the test set and the hidden labels of the
    competition's phase (``data/test/`` and ``hidden/`` without phases)."""
    paths = competition.paths
    return tuple(f"{d.relative_to(paths.root).as_posix()}/" for d in (paths.test, paths.hidden))


@dataclass
class RescoreSummary:
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    not_scorable: int = 0  # a phase failed before there were predictions
    skipped: dict[str, str] = field(default_factory=dict)


def rescore(competition: Competition, sinks: RecordSinks, *, force: bool = False) -> RescoreSummary:
    """Rescore every record that can be; after ``finalize`` only with ``force`` (a HarnessError otherwise)."""
    reason = refuse_after_finalize(competition, "rescore", force) or "rescore"
    summary = RescoreSummary()
    moderated = moderated_submissions(competition)
    for name, record, problem in records_to_rewrite(competition.paths.records, Results(competition).listing()):
        if record is None:
            summary.skipped[name] = problem
            continue
        if (state := moderated.get(record.submission.id)) is not None:  # its cleared scores must stay cleared
            summary.skipped[record.evaluation_id] = f"its submission was {state}"
            continue
        if record.failed_phase not in (None, "score"):
            summary.not_scorable += 1
            continue
        view = competition.for_phase(record.phase)  # its phase's test set and labels
        problem = _cannot_rescore(view, record)
        if problem:
            summary.skipped[record.evaluation_id] = problem
            continue
        if _rescore(view, record, reason):
            summary.changed.append(record.evaluation_id)
            sinks.rescored(record, competition.paths.records)
        else:
            summary.unchanged += 1
    return summary


def _cannot_rescore(competition: Competition, record: EvaluationRecord) -> str | None:
    recorded = record.manifest.get("predictions_sha256")
    if not recorded:
        return "the record holds no hash of its predictions (they were not a regular file)"
    path = stored_predictions(competition, record.evaluation_id)
    if regular_file_sha256(path) != recorded:
        return f"the stored predictions ({path}) are gone or differ from the ones the record hashed"
    if changes_since(competition.paths.root, competition.data_manifest, record.manifest["data_sha256"], *scoring_data(competition)) != []:
        return "the test set or its labels changed since this evaluation (or cannot be compared); use `harness reinfer` for a new test set"
    return None


def _rescore(competition: Competition, record: EvaluationRecord, reason: str) -> bool:
    """Score again; on any change, move the old outcome into the history. True when it changed."""
    verdict, message, scores = score_file(competition, stored_predictions(competition, record.evaluation_id))
    failed_phase = None if verdict is Verdict.SCORED else "score"
    if (verdict.value, failed_phase, message, scores) == (record.verdict, record.failed_phase, record.message, record.scores):
        return False
    record.history.append(
        {
            "replaced_at": utc_now(),
            "reason": reason,
            "verdict": record.verdict,
            "failed_phase": record.failed_phase,
            "message": record.message,
            "scores": record.scores,
        }
    )
    record.verdict, record.failed_phase, record.message, record.scores = verdict.value, failed_phase, message, scores
    return True
