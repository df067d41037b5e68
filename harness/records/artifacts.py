"""What an evaluation left on disk, found from its record alone: the model it used, its predictions,
its telemetry, and the files kept with its MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

from harness.competition.core import Competition
from harness.competition.data_manifest import snapshot_path
from harness.records.record import EvaluationRecord
from harness.util.archives import archive_path


def run_artifacts(competition: Competition, record: EvaluationRecord) -> list[tuple[Path, str]]:
    """The files kept with an evaluation's MLflow run, found from its record alone: logs, telemetry,
    the data manifest, and the predictions once they proved a regular file."""
    run = competition.paths.run(record.evaluation_id)
    files = [(p, "logs") for p in sorted(run.logs.glob("*.log"))]
    files.append((run.telemetry, "telemetry"))
    files.append((snapshot_path(competition.paths.root, record.manifest["data_sha256"]), "manifest"))
    if record.manifest.get("predictions_sha256"):
        files.append((stored_predictions(competition, record.evaluation_id), "predictions"))
    return files


def stored_model(competition: Competition, record: EvaluationRecord) -> Path | None:
    """The model an evaluation used, as this machine keeps it: the archive a node sent back, else the
    directory it was trained in (its own run's, or the one a re-infer reused); None when neither is here."""
    model = competition.paths.run(record.evaluation_id).model
    if record.origin and record.origin["kind"] == "reinfer" and not model.is_dir():  # a re-infer from before models were restored
        model = competition.paths.run(record.origin["evaluation_id"]).model
    if archive_path(model).is_file():
        return archive_path(model)
    return model if model.is_dir() else None


def stored_predictions(competition: Competition, evaluation_id: str) -> Path:
    return competition.paths.run(evaluation_id).output / competition.settings.competition.predictions.file


def load_series(competition: Competition, evaluation_id: str) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """The telemetry series an evaluation left beside its logs (phase -> name -> [(time, value)])."""
    try:
        return json.loads(competition.paths.run(evaluation_id).telemetry.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
