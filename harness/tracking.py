"""MLflow records: one run per evaluation, tagged so an organizer finds it by team or submission."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from harness.record import EvaluationRecord

log = logging.getLogger(__name__)
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch


def default_tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


class Tracker:
    """Writes evaluation runs to MLflow (embedded sqlite by default, or a server)."""

    def __init__(self, uri: str | None, experiment: str, home: Path) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        for noisy in ("alembic", "mlflow.store.db.utils"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient  # slow import: only when tracking is used

        self.uri = uri or default_tracking_uri(home)
        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found
            else self.client.create_experiment(experiment, artifact_location=(home / "mlartifacts" / experiment).as_uri())
        )

    def start_run(self, record: EvaluationRecord, params: dict[str, Any], artifacts: list[tuple[Path, str]],
                  series: dict[str, dict[str, list[tuple[float, float]]]] | None = None) -> str:
        """Create the run with its tags, params, metrics, telemetry series (phase -> name -> [(unix time,
        value)]) and artifacts; ``finish_run`` adds the record."""
        from mlflow.entities import Metric, Param, RunTag

        submission = record.submission
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{submission['team']}/{submission['id']}",
            tags={
                "harness.competition": record.competition,
                "harness.team": submission["team"],
                "harness.submission": submission["id"],
                "harness.image_digest": submission.get("image_digest") or "",
                "harness.evaluation": record.evaluation_id,
                "harness.round": record.round_id or "",
            },
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, 0) for key, value in _metrics(record).items()]
        self.client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            tags=[RunTag("harness.verdict", record.verdict), RunTag("harness.failed_phase", record.failed_phase or "")],
        )
        points = [
            Metric(f"{phase}_{name}", float(value), int(at * 1000), step)
            for phase, named in (series or {}).items()
            for name, values in named.items()
            for step, (at, value) in enumerate(values)
        ]
        for start in range(0, len(points), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=points[start : start + MAX_METRICS_PER_BATCH])
        for path, folder in artifacts:
            if path.is_file() and not path.is_symlink():
                self.client.log_artifact(run_id, str(path), folder)
        return run_id

    def finish_run(self, run_id: str, record_path: Path, verdict: str) -> None:
        self.client.log_artifact(run_id, str(record_path))
        self.client.set_terminated(run_id, status="FINISHED" if verdict == "SCORED" else "FAILED")


def _metrics(record: EvaluationRecord) -> dict[str, float]:
    values: dict[str, float] = {}
    for part, scores in record.scores.items():
        for name, value in scores.items():
            values[f"{part}_{name}"] = value
    for phase, figures in record.phases.items():
        for key in ("wall_s", "cpu_s", "peak_memory_bytes", "stdout_bytes", "stderr_bytes", "output_bytes",
                    "peak_gpu_memory_bytes", "peak_gpu_utilization"):
            if isinstance(figures.get(key), (int, float)):
                values[f"{phase}_{key}"] = figures[key]
    return values


def flat_params(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = value
    return flat
