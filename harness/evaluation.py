"""One submission's evaluation: train → infer → score → record.

An ``Evaluation`` hands out the phase specs to run, one after the other, and takes back their
results; whoever runs them (``harness check`` in process, a round on Ray) is not its concern.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from harness import __version__
from harness.competition import Competition
from harness.ledger import utc_now
from harness.manifest import file_sha256, host_info
from harness.record import EvaluationRecord
from harness.scoring import LabelsError, PredictionsError, score_predictions, validate_predictions
from limits import PhaseVerdict, Verdict
from limits.docker_options import contract_environment
from runner.docker_backend import make_writable_dir
from runner.phase import Mount, PhaseResult, PhaseSpec

PHASE_ORDER = ("train", "infer")


class Evaluation:
    def __init__(self, competition: Competition, submission: dict[str, Any], *, round_id: str | None = None, attempt: int = 1) -> None:
        self.competition = competition
        self.submission = submission
        self.round_id = round_id
        self.attempt = attempt
        self.id = f"ev-{secrets.token_hex(6)}"
        self.run_dir = competition.paths.runs / self.id
        self.results: dict[str, PhaseResult] = {}
        self.intake_error: str | None = None

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"

    @property
    def output_dir(self) -> Path:
        return self.run_dir / "output"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def reject_image(self, message: str) -> None:
        """Intake refused the image: no phase runs, the verdict is INVALID_IMAGE."""
        self.intake_error = message

    def next_phase(self) -> PhaseSpec | None:
        """The next phase to run, or None when the phases are over (done or failed)."""
        if self.intake_error is not None:
            return None
        for phase in PHASE_ORDER:
            if phase not in self.results:
                return self._spec(phase)
            if self.results[phase].verdict is not PhaseVerdict.OK:
                return None
        return None

    def accept(self, result: PhaseResult) -> None:
        self.results[result.phase] = result

    @property
    def infra_failed(self) -> bool:
        return any(r.verdict is PhaseVerdict.INFRA_ERROR for r in self.results.values())

    def _spec(self, phase: str) -> PhaseSpec:
        settings, paths = self.competition.settings, self.competition.paths
        limits = settings.limits.phase(phase)
        if phase == "train":
            make_writable_dir(self.model_dir)
            mounts = (Mount(str(paths.train), "/data/train"), Mount(str(self.model_dir), "/model", read_only=False))
            writable = (str(self.model_dir),)
        else:
            make_writable_dir(self.output_dir)
            mounts = (
                Mount(str(paths.test), "/data/test"),
                Mount(str(self.model_dir), "/model"),
                Mount(str(self.output_dir), "/output", read_only=False),
            )
            writable = (str(self.output_dir),)
        return PhaseSpec(
            run_id=self.id,
            phase=phase,
            image=self.submission["image_digest"],
            command=settings.competition.command[phase],
            mounts=mounts,
            environment=contract_environment(phase, limits, settings.seed),
            limits=limits,
            log_dir=str(self.log_dir),
            writable=writable,
            labels={
                "harness.round": self.round_id or "",
                "harness.competition": self.competition.name,
                "harness.submission": self.submission["id"],
                "harness.evaluation": self.id,
            },
            runtime=settings.runner.get("runtime"),
        )

    def conclude(self, docker_version: str = "") -> EvaluationRecord:
        """Score what the phases left behind and assemble the record (not yet saved or tracked)."""
        verdict, failed_phase, message, scores, predictions_sha256 = self._outcome()
        settings = self.competition.settings
        return EvaluationRecord(
            evaluation_id=self.id,
            round_id=self.round_id,
            attempt=self.attempt,
            competition=self.competition.name,
            submission=self.submission,
            verdict=verdict.value,
            failed_phase=failed_phase,
            message=message,
            phases={p: _phase_record(r) for p, r in self.results.items()},
            scores=scores,
            manifest={
                "data_sha256": self.competition.data_sha256,
                "config_sha256": settings.config_sha256,
                "harness_version": __version__,
                "seed": settings.seed,
                "host": host_info(docker_version),
                "predictions_sha256": predictions_sha256,
            },
            created_at=utc_now(),
        )

    def _outcome(self) -> tuple[Verdict, str | None, str, dict[str, dict[str, float]], str | None]:
        if self.intake_error is not None:
            return Verdict.INVALID_IMAGE, "intake", self.intake_error, {}, None
        for phase in PHASE_ORDER:
            result = self.results[phase]
            if result.verdict is not PhaseVerdict.OK:
                return Verdict.from_phase(result.verdict), phase, result.message, {}, None
        verdict, message, scores, predictions_sha256 = self._score()
        return verdict, None if verdict is Verdict.SCORED else "score", message, scores, predictions_sha256

    def _score(self) -> tuple[Verdict, str, dict[str, dict[str, float]], str | None]:
        competition = self.competition.settings.competition
        spec = competition.predictions
        path = self.output_dir / spec.file
        ids, labels, split = self.competition.labels
        try:
            predictions = validate_predictions(path, ids, spec)
        except PredictionsError as exc:
            return Verdict.INVALID_PREDICTIONS, str(exc), {}, None
        try:
            scores = score_predictions(predictions, labels, split, list(competition.metrics), spec)
        except (LabelsError, ValueError) as exc:
            return Verdict.INFRA_ERROR, f"scoring failed on the organizer's side: {exc}", {}, None
        return Verdict.SCORED, "", scores, file_sha256(path)

    def artifacts(self, record: EvaluationRecord) -> list[tuple[Path, str]]:
        """Files worth keeping with the run: logs, and the predictions once they proved a regular file."""
        files = [(p, "logs") for p in sorted(self.log_dir.glob("*.log"))]
        if record.verdict == Verdict.SCORED.value:
            files.append((self.output_dir / self.competition.settings.competition.predictions.file, "predictions"))
        return files


def _phase_record(result: PhaseResult) -> dict[str, Any]:
    data = result.to_dict()
    data.pop("phase")
    data.pop("log_tail")
    data.pop("series")  # telemetry series go to MLflow, not the record
    return data
