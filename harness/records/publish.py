"""A record reaches MLflow: at once after its evaluation (``MlflowSink``), or later through ``harness sync``.

The record is always on disk first; an upload that fails leaves it there for ``sync``. Its model is
archived in the artifact store (``harness.records.model_store``) before its run is marked finished,
so an archive that failed is tried again by ``sync`` too.
"""

from __future__ import annotations

from pathlib import Path

from harness.competition.core import Competition
from harness.records.artifacts import load_series, run_artifacts
from harness.records.model_store import ModelStore
from harness.records.record import EvaluationRecord, save_record
from harness.records.tracking import Tracker
from harness.util.errors import first_line
from harness.util.redact import redact_text


def publish(tracker: Tracker, competition: Competition, record: EvaluationRecord, directory: Path) -> str | None:
    """Upload the run of a record saved in ``directory``; returns why it failed, or None. The record
    file gets the run id before the upload finishes."""
    try:
        run_id = tracker.open_run(record)
        record.mlflow_run_id = run_id
        path = save_record(record, directory)
        ModelStore.for_competition(competition).keep(competition, record)  # before the run is finished: else `sync` does it again
        tracker.fill_run(run_id, record, path, run_artifacts(competition, record), load_series(competition, record.evaluation_id))
    except Exception as exc:  # noqa: BLE001 - any tracking failure: the record stays on disk for `harness sync`
        # The client's message may name the tracking URI, with its user and password: never shown.
        return redact_text(first_line(exc))
    return None
