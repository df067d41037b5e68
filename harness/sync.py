"""Records reach MLflow here: at once after an evaluation, or later with ``harness sync``.

The record is always on disk first. An upload that fails (the tracking server is down) leaves it
there, with ``mlflow_run_id`` null or pointing at an unfinished run; ``sync`` uploads every such
record again. Uploads are idempotent, so nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.competition import Competition
from harness.errors import HarnessError
from harness.evaluation import load_series, run_artifacts
from harness.record import EvaluationRecord, records_to_rewrite, save_record
from harness.tracking import TERMINATED, Tracker


def publish(tracker: Tracker, competition: Competition, record: EvaluationRecord, directory: Path) -> str | None:
    """Upload the run of a record saved in ``directory``; returns why it failed, or None. The record
    file gets the run id before the upload finishes."""
    try:
        run_id = tracker.open_run(record)
        record.mlflow_run_id = run_id
        path = save_record(record, directory)
        tracker.fill_run(run_id, record, path, run_artifacts(competition, record), load_series(competition, record.evaluation_id))
    except Exception as exc:  # noqa: BLE001 - any tracking failure: the record stays on disk for `harness sync`
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def warn_unpublished(record: EvaluationRecord, problem: str) -> None:
    print(f"warning: MLflow tracking failed for {record.evaluation_id} ({problem}); the record is kept on disk, "
          f"`harness sync {record.competition}` uploads it later", file=sys.stderr)


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
        raise HarnessError(f"MLflow at {tracker.uri} cannot be reached ({type(exc).__name__}); nothing was uploaded, try again later") from None
    for name, record, problem in records_to_rewrite(competition.paths.records):
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
