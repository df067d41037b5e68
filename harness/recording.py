"""Turn a finished evaluation into its record: scored, saved, tracked in MLflow, ledger updated."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from harness import __version__
from harness.evaluation import Evaluation
from harness.record import EvaluationRecord, save_record
from harness.tracking import Tracker, flat_params

log = logging.getLogger(__name__)


def record_evaluation(evaluation: Evaluation, directory: Path, tracker: Tracker | None, docker_version: str = "") -> EvaluationRecord:
    """Score and save; a tracking failure keeps the record on disk (``mlflow_run_id`` stays null)."""
    record = evaluation.conclude(docker_version)
    run_id = None
    if tracker is not None:
        try:
            series = {phase: result.series for phase, result in evaluation.results.items()}
            run_id = tracker.start_run(record, _params(evaluation, record), evaluation.artifacts(record), series)
            record.mlflow_run_id = run_id
        except Exception as exc:  # noqa: BLE001 - the record must survive a tracking outage
            print(f"warning: MLflow tracking failed for {record.evaluation_id}: {exc}; the record is kept on disk", file=sys.stderr)
    path = save_record(record, directory)
    if tracker is not None and run_id is not None:
        try:
            tracker.finish_run(run_id, path, record.verdict)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: MLflow could not store the record of {record.evaluation_id}: {exc}", file=sys.stderr)
    return record


def _params(evaluation: Evaluation, record: EvaluationRecord) -> dict[str, object]:
    settings = evaluation.competition.settings
    return {
        "image_digest": record.submission.get("image_digest"),
        "data_sha256": record.manifest["data_sha256"],
        "config_sha256": record.manifest["config_sha256"],
        "seed": settings.seed,
        "harness_version": __version__,
        **flat_params(settings.limits.to_dict(), "limits."),
    }
