"""Records reach MLflow here: at once after an evaluation, or later with ``harness sync``.

The record is always on disk first. An upload that fails (the tracking server is down) leaves it
there, with ``mlflow_run_id`` null or pointing at an unfinished run; ``sync`` uploads every such
record again. Uploads are idempotent, so nothing is lost and nothing is doubled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.competition.core import Competition
from harness.records.publish import publish
from harness.records.record import records_to_rewrite
from harness.records.tracking import TERMINATED, Tracker
from harness.results import Results
from harness.util.errors import HarnessError
from harness.util.redact import redact_text


@dataclass
class SyncSummary:
    uploaded: list[str] = field(default_factory=list)
    present: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def sync(competition: Competition, tracker: Tracker) -> SyncSummary:
    """Upload every record whose run is missing or unfinished in MLflow."""
    summary = SyncSummary()
    try:
        runs = tracker.runs_by_evaluation()
    except Exception as exc:  # noqa: BLE001 - whatever the client raises, the server cannot be used now
        raise HarnessError(
            f"MLflow at {redact_text(tracker.uri)} cannot be reached ({type(exc).__name__}); nothing was uploaded, try again later"
        ) from None
    for name, record, problem in records_to_rewrite(competition.paths.records, Results(competition).listing()):
        if record is None:
            summary.failed[name] = problem
            continue
        run_id, status = runs.get(record.evaluation_id, (None, None))
        if status in TERMINATED and record.mlflow_run_id == run_id:
            summary.present += 1
            continue
        problem = publish(tracker, competition, record, competition.paths.records)
        if problem is None:
            summary.uploaded.append(record.evaluation_id)
        else:
            summary.failed[record.evaluation_id] = problem
    return summary
