"""Turn a finished evaluation into its record: scored, saved, handed to the sinks."""

from __future__ import annotations

from pathlib import Path

from harness.evaluation.evaluation import Evaluation
from harness.records.record import EvaluationRecord
from harness.records.sinks import RecordSinks


def record_evaluation(evaluation: Evaluation, directory: Path, sinks: RecordSinks, docker_version: str = "") -> EvaluationRecord:
    """Score, save in ``directory``, tell the sinks; a sink's failure keeps the record on disk (``harness sync``)."""
    record = evaluation.conclude(docker_version)
    sinks.evaluated(record, directory)
    return record
