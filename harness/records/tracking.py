"""MLflow records: one run per evaluation, nested under its round's run, tagged so an organizer finds
it by round, team or submission.

An upload is idempotent: the run is found again by its evaluation id, and everything logged has
the values and timestamps of the record, so an upload cut short (the server went away) is simply
done again by ``harness sync``, without doubling a run or a metric.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.limits import Limits, Verdict
from harness.records.record import EvaluationRecord
from harness.util.errors import ConfigError, first_line
from harness.util.redact import redact_text

log = logging.getLogger(__name__)
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch
TERMINATED = ("FINISHED", "FAILED", "KILLED")
# An unreachable server must not stall a round for minutes per call (MLflow's default is 7 retries
# with exponential backoff): the record is kept on disk and `harness sync` uploads it later.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def quiet_mlflow() -> None:
    """MLflow's client as the harness wants it: bounded retries and timeouts, no progress bars, no chatter."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for noisy in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def default_tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


class Tracker:
    """Writes evaluation runs to MLflow (embedded sqlite by default, or a server); talks to it only
    when first used, so a round starts even while the server is down."""

    @classmethod
    def for_competition(cls, competition) -> Tracker:
        """The competition's tracking as configured (``tracking.uri``, ``tracking.experiment``)."""
        tracking = competition.settings.tracking
        return cls(tracking.uri, tracking.experiment, competition.home)

    def __init__(self, uri: str | None, experiment: str, home: Path) -> None:
        quiet_mlflow()
        from mlflow.tracking import MlflowClient  # slow import: only when tracking is used

        self.uri = uri or default_tracking_uri(home)
        self.experiment = experiment
        # Embedded: artifacts under the work directory. A server keeps them where it is told to.
        self._artifact_location = (home / "mlartifacts" / experiment).as_uri() if self.uri.startswith("sqlite:") else None
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
        except Exception as exc:  # noqa: BLE001 - an unknown scheme, a database driver not installed: the URI names a password, perhaps
            raise ConfigError(f"tracking.uri {redact_text(self.uri)} cannot be used: {redact_text(first_line(exc))}") from None
        self._experiment_id: str | None = None
        self._group_runs: dict[str, str] = {}

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            self._experiment_id = (
                found.experiment_id if found else self.client.create_experiment(self.experiment, artifact_location=self._artifact_location)
            )
        return self._experiment_id

    def open_run(self, record: EvaluationRecord) -> str:
        """The evaluation's run: the one made for it before (an upload cut short), else a new one."""
        found = self._find({"harness.kind": "evaluation", "harness.evaluation": record.evaluation_id})
        if found is not None:
            return found
        submission = record.submission
        tags = {
            "harness.kind": "evaluation",
            "harness.competition": record.competition,
            "harness.team": submission.team,
            "harness.submission": submission.id,
            "harness.image_digest": submission.image_digest or "",
            "harness.evaluation": record.evaluation_id,
            "harness.round": record.round_id or "",
        }
        if record.round_id:
            tags["mlflow.parentRunId"] = self._group_run(record.round_id)
        run = self.client.create_run(
            self.experiment_id, start_time=_millis(record.created_at), run_name=f"{submission.team}/{submission.id}", tags=tags
        )
        return run.info.run_id

    def fill_run(
        self,
        run_id: str,
        record: EvaluationRecord,
        record_path: Path | None,
        artifacts: list[tuple[Path, str]],
        series: dict[str, dict[str, list[tuple[float, float]]]],
    ) -> None:
        """Params, tags, metrics, telemetry series (phase -> name -> [(unix time, value)], one step per
        point), artifacts and the record itself; then the run is marked finished."""
        from mlflow.entities import Metric, Param, RunTag

        at = _millis(record.created_at)
        manifest = record.manifest
        self.client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), at, 0) for key, value in _metrics(record).items()],
            params=[Param(k, str(v)[:6000]) for k, v in params_of(record).items()],
            tags=[
                RunTag(k, str(v))
                for k, v in {
                    "harness.verdict": record.verdict,
                    "harness.failed_phase": record.failed_phase or "",
                    "harness.model_sha256": manifest.get("model_sha256") or "",
                    "harness.predictions_sha256": manifest.get("predictions_sha256") or "",
                }.items()
            ],
        )
        points = [
            Metric(f"{phase}_{name}", float(value), int(when * 1000), step)
            for phase, named in series.items()
            for name, values in named.items()
            for step, (when, value) in enumerate(values)
        ]
        for start in range(0, len(points), MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=points[start : start + MAX_METRICS_PER_BATCH])
        self.log_files(run_id, [*artifacts, *([(record_path, "")] if record_path is not None else [])])
        self.client.set_terminated(run_id, status="FINISHED" if record.verdict == Verdict.SCORED else "FAILED")

    def log_files(self, run_id: str, files: list[tuple[Path, str]]) -> None:
        """Regular files only: a link or a special file among a submission's outputs is never opened.
        Through a repository of this call's own: ``client.log_artifact`` would keep one per run for the
        process's life (MLflow caches up to 1,024, each with a thread pool), kilobytes per submission
        in a round's driver."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # slow import: only when used

        regular = [(path, folder) for path, folder in files if path.is_file() and not path.is_symlink()]
        if not regular:
            return
        repository = get_artifact_repository(self.client.get_run(run_id).info.artifact_uri, tracking_uri=self.uri)
        for path, folder in regular:
            repository.log_artifact(str(path), folder or None)

    def log_audit(self, run_id: str, audit_id: str, status: str, reports: list[Path]) -> None:
        self.log_files(run_id, [(path, f"audits/{audit_id}") for path in reports])
        self.client.set_tag(run_id, "harness.audit", f"{status} ({audit_id})")

    def log_rescore(self, run_id: str, record: EvaluationRecord, record_path: Path) -> None:
        """New scores as the next step of each score's history; the old values stay plotted."""
        from mlflow.entities import Metric, RunTag

        now, step = int(time.time() * 1000), len(record.history)
        metrics = [Metric(f"{part}_{name}", float(v), now, step) for part, named in record.scores.items() for name, v in named.items()]
        self.client.log_batch(
            run_id, metrics=metrics, tags=[RunTag("harness.verdict", record.verdict), RunTag("harness.rescored", str(step))]
        )
        self.log_files(run_id, [(record_path, "")])

    def runs_by_evaluation(self) -> dict[str, tuple[str, str]]:
        """evaluation id -> (run id, status) for every evaluation run of the experiment."""
        found: dict[str, tuple[str, str]] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], _filter({"harness.kind": "evaluation"}), max_results=1000, page_token=token
            )
            for run in page:
                found[run.data.tags["harness.evaluation"]] = (run.info.run_id, run.info.status)
            token = page.token
            if not token:
                return found

    def _group_run(self, round_id: str) -> str:
        """The run that holds a round's (or a re-infer batch's) evaluation runs as its children."""
        if round_id not in self._group_runs:
            found = self._find({"harness.kind": "round", "harness.round": round_id})
            if found is None:
                found = self.client.create_run(
                    self.experiment_id, run_name=round_id, tags={"harness.kind": "round", "harness.round": round_id}
                ).info.run_id
                self.client.set_terminated(found)
            self._group_runs[round_id] = found
        return self._group_runs[round_id]

    def _find(self, tags: dict[str, str]) -> str | None:
        runs = self.client.search_runs([self.experiment_id], _filter(tags), max_results=1)
        return runs[0].info.run_id if runs else None


def _filter(tags: dict[str, str]) -> str:
    return " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())


def _millis(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def params_of(record: EvaluationRecord) -> dict[str, Any]:
    """What the evaluation depended on, from its record alone."""
    manifest = record.manifest
    params = {
        key: manifest[key]
        for key in ("image_digest", "data_sha256", "config_sha256", "seed", "harness_version")
        if manifest.get(key) is not None
    }
    if manifest.get("environment"):
        params["environment_sha256"] = manifest["environment"]["sha256"]
    limits = (manifest.get("config") or {}).get("limits")
    if limits:
        params.update(flat_params(Limits.from_mapping(limits, "limits").to_dict(), "limits."))
    return params


def _metrics(record: EvaluationRecord) -> dict[str, float]:
    values: dict[str, float] = {}
    for part, scores in record.scores.items():
        for name, value in scores.items():
            values[f"{part}_{name}"] = value
    for phase, figures in record.phases.ran().items():
        for key in (
            "wall_s",
            "cpu_s",
            "peak_memory_bytes",
            "peak_pids",
            "peak_tmp_bytes",
            "stdout_bytes",
            "stderr_bytes",
            "output_bytes",
            "output_files",
            "peak_gpu_memory_bytes",
            "peak_gpu_utilization",
        ):
            value = getattr(figures, key) if key in figures.model_fields_set else None  # a figure an old record lacks is not logged
            if isinstance(value, (int, float)):
                values[f"{phase}_{key}"] = value
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
