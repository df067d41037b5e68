"""Turn a finished evaluation into its record: scored, saved, tracked in MLflow, ledger updated."""

from __future__ import annotations

from pathlib import Path

from harness.evaluation.evaluation import Evaluation
from harness.records.publish import publish, warn_unpublished
from harness.records.record import EvaluationRecord, save_record
from harness.records.tracking import Tracker


def record_evaluation(evaluation: Evaluation, directory: Path, tracker: Tracker | None, docker_version: str = "") -> EvaluationRecord:
    """Score and save; a tracking failure keeps the record on disk (``harness sync`` uploads it later)."""
    record = evaluation.conclude(docker_version)
    save_record(record, directory)  # on disk before anything else can fail
    if tracker is not None and (problem := publish(tracker, evaluation.competition, record, directory)):
        warn_unpublished(record, problem)
    return record
