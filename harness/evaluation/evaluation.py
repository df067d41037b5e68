"""One submission's evaluation: [smoke train → smoke infer → check] → train → infer → score → record.

An ``Evaluation`` hands out the phase specs to run, one after the other, and takes back their
results; whoever runs them (``harness check`` in process, a round on Ray) is not its concern.

When the competition declares a smoke stage (``harness.competition.smoke``), its two phases come
first, under the identical contract (same mounts, environment and container options; only the
data and the limits differ), in ``runs/<id>/smoke/{model,output}``; their logs go where the full
phases' do (``runs/<id>/logs``), which replace them when they run. A smoke phase that fails, or
smoke predictions that do not validate against the smoke inputs, end the evaluation: the record's
``failed_stage`` is ``smoke``, its ``phases`` are the smoke phases and its message starts with
``smoke test (N training rows, M inputs): ``. Its ``smoke`` block gives the smoke data's hash and
phases whenever the stage ran.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from pathlib import Path
from types import EllipsisType
from typing import Any

from harness import __version__
from harness.competition.core import Competition
from harness.competition.paths import RunPaths
from harness.competition.smoke import SmokeStage, smoke_stage
from harness.limits import PhaseVerdict, Verdict
from harness.limits.docker_options import contract_environment
from harness.records.artifacts import stored_predictions
from harness.records.model import PhaseRecord, Phases
from harness.records.model import Submission as Evaluated
from harness.records.record import EvaluationRecord
from harness.runner.host import host_info
from harness.runner.phase import Mount, PhaseResult, PhaseSpec, registry_reference
from harness.scoring import LabelsError, PredictionsError, score_predictions, validate_predictions
from harness.submissions.ledger import Submission
from harness.util.clock import utc_now
from harness.util.environment import environment_fingerprint
from harness.util.files import write_json_atomic
from harness.util.hashing import regular_file_sha256, tree_sha256

PHASE_ORDER = ("train", "infer")


def evaluated(submission: Submission | Evaluated | Mapping[str, Any]) -> Evaluated:
    """The submission an evaluation evaluates, typed as its record's ``submission`` block: the ledger's
    submission (a round), or the block of an earlier record or of ``harness check`` (a mapping).
    Checked with the whole record, when it is written."""
    if isinstance(submission, Evaluated):
        return submission
    if isinstance(submission, Submission):
        fields = {name: getattr(submission, name) for name in ("id", "team", "image", "image_digest", "submitted_at")}
        return Evaluated.model_construct(**fields)
    return Evaluated.model_construct(**submission)


class Evaluation:
    def __init__(
        self,
        competition: Competition,
        submission: Submission | Evaluated | Mapping[str, Any],
        *,
        round_id: str | None = None,
        attempt: int = 1,
        smoke: SmokeStage | None | EllipsisType = ...,
    ) -> None:
        """``smoke``: the smoke stage its caller worked out (a round plans it once for all its
        evaluations; None: none); left out, it is worked out here (its data carved and hashed)."""
        self.competition = competition
        self.submission = evaluated(submission)
        self.round_id = round_id
        self.attempt = attempt
        self.id = f"ev-{secrets.token_hex(6)}"
        self.paths = competition.paths.run(self.id)
        self.run_dir = self.paths.root
        self.results: dict[str, PhaseResult] = {}
        self.intake_error: str | None = None
        # Phases done by an earlier evaluation, as recorded there (re-infer carries its train phase).
        self.carried: dict[str, PhaseRecord] = {}
        self.origin: dict[str, Any] | None = None
        self.smoke = smoke_stage(competition) if smoke is ... else smoke
        self.smoke_results: dict[str, PhaseResult] = {}
        self.smoke_problem: str | None = None  # why the smoke predictions do not validate
        self.smoke_passed = False

    def reuse_model(self, earlier: EvaluationRecord) -> None:
        """Run only ``infer``, with the model ``earlier`` used, which the caller restores into this
        evaluation's model directory (re-infer on a replaced test set); ``origin`` names the
        evaluation that trained it."""
        self.carried = {"train": earlier.phases.ran()["train"]}
        self.smoke = None  # the model is trained already: there is nothing to check first
        reinferred = earlier.origin is not None and earlier.origin["kind"] == "reinfer"
        self.origin = {"kind": "reinfer", "evaluation_id": earlier.origin["evaluation_id"] if reinferred else earlier.evaluation_id}

    @property
    def output_dir(self) -> Path:
        return self.paths.output

    @property
    def log_dir(self) -> Path:
        return self.paths.logs

    def reject_image(self, message: str) -> None:
        """Intake refused the image: no phase runs, the verdict is INVALID_IMAGE."""
        self.intake_error = message

    def next_phase(self) -> PhaseSpec | None:
        """The next phase to run, or None when the phases are over (done or failed)."""
        if self.intake_error is not None:
            return None
        if self.in_smoke:
            for phase in PHASE_ORDER:
                if phase not in self.smoke_results:
                    return self._spec(phase)
                if self.smoke_results[phase].verdict is not PhaseVerdict.OK:
                    return None
            return None  # its predictions did not validate
        for phase in PHASE_ORDER:
            if phase in self.carried:
                continue
            if phase not in self.results:
                return self._spec(phase)
            if self.results[phase].verdict is not PhaseVerdict.OK:
                return None
        return None

    @property
    def in_smoke(self) -> bool:
        """Whether the phases handed out now are the smoke stage's (until it passes)."""
        return self.smoke is not None and not self.smoke_passed

    def phase_name(self, phase: str) -> str:
        """What progress lines and the service call the phase handed out now: ``smoke train`` or ``train``."""
        return f"smoke {phase}" if self.in_smoke else phase

    @property
    def smoke_paths(self) -> RunPaths:
        return RunPaths(self.paths.root / "smoke")

    def accept(self, result: PhaseResult) -> None:
        if not self.in_smoke:
            self.results[result.phase] = result
            return
        self.smoke_results[result.phase] = result
        if result.phase == PHASE_ORDER[-1] and result.verdict is PhaseVerdict.OK:
            self.smoke_problem = self._smoke_predictions_problem()
            self.smoke_passed = self.smoke_problem is None

    def _smoke_predictions_problem(self) -> str | None:
        """Whether the smoke predictions are valid for the smoke inputs (they are not scored)."""
        assert self.smoke is not None
        spec = self.competition.settings.competition.predictions
        try:
            validate_predictions(self.smoke_paths.output / spec.file, self.smoke.test_ids, spec)
        except PredictionsError as exc:
            return str(exc)
        return None

    @property
    def infra_failure(self) -> PhaseResult | None:
        """The phase (smoke or full) the organizer's infrastructure failed, if any."""
        return next((r for r in [*self.smoke_results.values(), *self.results.values()] if r.verdict is PhaseVerdict.INFRA_ERROR), None)

    @property
    def infra_failed(self) -> bool:
        return self.infra_failure is not None

    def blame_image(self, message: str) -> None:
        """Make the infrastructure failure the image's: a RUNTIME_ERROR of the same phase, saying why."""
        failure = self.infra_failure
        assert failure is not None
        results = self.smoke_results if any(r is failure for r in self.smoke_results.values()) else self.results
        results[failure.phase] = dataclasses.replace(failure, verdict=PhaseVerdict.RUNTIME_ERROR, message=message)

    def _spec(self, phase: str) -> PhaseSpec:
        settings = self.competition.settings
        if self.in_smoke:
            assert self.smoke is not None
            data, limits, run = self.smoke.paths, self.smoke.limits.phase(phase), self.smoke_paths
            run_id, model_dir = f"{self.id}-smoke", run.model
        else:
            data, limits, run = self.competition.paths, settings.limits.phase(phase), self.paths
            run_id, model_dir = self.id, self.paths.model
        if phase == "train":
            model_dir.mkdir(parents=True, exist_ok=True)  # the backend hands it to the container's user
            mounts = (Mount(str(data.train), "/data/train"), Mount(str(model_dir), "/model", read_only=False))
            writable = (str(model_dir),)
        else:
            run.output.mkdir(parents=True, exist_ok=True)
            mounts = (
                Mount(str(data.test), "/data/test"),
                Mount(str(model_dir), "/model"),
                Mount(str(run.output), "/output", read_only=False),
            )
            writable = (str(run.output),)
        return PhaseSpec(
            run_id=run_id,
            phase=phase,
            image=self.submission.image_digest,
            command=settings.competition.command[phase],
            mounts=mounts,
            environment=contract_environment(phase, limits, settings.seed),
            limits=limits,
            log_dir=str(self.log_dir),
            writable=writable,
            labels={
                "harness.round": self.round_id or "",
                "harness.competition": self.competition.name,
                "harness.submission": self.submission.id,
                "harness.evaluation": self.id,
            },
            runtime=settings.runner.runtime,
            pull_from=registry_reference(self.submission.image),
            keep_model=phase == "train" and not self.in_smoke,
        )

    @property
    def phase_ok(self) -> dict[str, bool]:
        ok = {p: r.verdict is PhaseVerdict.OK for p, r in self.results.items()}
        return {**{p: r.verdict is PhaseVerdict.OK for p, r in self.carried.items()}, **ok}

    def conclude(self, docker_version: str = "") -> EvaluationRecord:
        """Score what the phases left behind and assemble the record (not yet saved or tracked);
        the telemetry series are written beside the run's logs."""
        verdict, failed_phase, message, scores = self._outcome()
        settings = self.competition.settings
        failed_in_smoke = self.intake_error is None and self.in_smoke
        shown = self.smoke_results if failed_in_smoke else self.results  # the phases of the stage that gave the verdict
        write_json_atomic(self.paths.telemetry, {p: r.series for p, r in shown.items()})
        smoke = None
        if self.smoke is not None and self.smoke_results:
            smoke = {**self.smoke.to_record(), "phases": {p: _phase_record(r) for p, r in self.smoke_results.items()}}
        return EvaluationRecord(
            evaluation_id=self.id,
            round_id=self.round_id,
            attempt=self.attempt,
            competition=self.competition.name,
            submission=self.submission,
            verdict=verdict.value,
            failed_phase=failed_phase,
            message=message,
            phases=Phases.model_validate({**({} if failed_in_smoke else self.carried), **{p: _phase_record(r) for p, r in shown.items()}}),
            scores=scores,
            manifest={
                "data_sha256": self.competition.data_sha256,
                "config_sha256": settings.config_sha256,
                "config": settings.as_dict(),
                "image_digest": self.submission.image_digest,
                "harness_version": __version__,
                "environment": environment_fingerprint(),
                "seed": settings.seed,
                "host": host_info(docker_version),
                "model_sha256": self._model_sha256(),
                "predictions_sha256": self._predictions_sha256(),
            },
            created_at=utc_now(),
            origin=self.origin,
            failed_stage="smoke" if failed_in_smoke else None,
            smoke=smoke,
            phase=self.competition.phase,
        )

    def _outcome(self) -> tuple[Verdict, str | None, str, dict[str, dict[str, float]]]:
        if self.intake_error is not None:
            return Verdict.INVALID_IMAGE, "intake", self.intake_error, {}
        if self.in_smoke:
            assert self.smoke is not None
            verdict, phase, message = self._smoke_outcome()
            return verdict, phase, f"{self.smoke.label}: {message}", {}
        for phase in PHASE_ORDER:
            if phase in self.carried:
                continue
            result = self.results[phase]
            if result.verdict is not PhaseVerdict.OK:
                return Verdict.from_phase(result.verdict), phase, result.message, {}
        verdict, message, scores = score_file(self.competition, self.predictions_path)
        return verdict, None if verdict is Verdict.SCORED else "score", message, scores

    def _smoke_outcome(self) -> tuple[Verdict, str, str]:
        for phase in PHASE_ORDER:
            result = self.smoke_results[phase]
            if result.verdict is not PhaseVerdict.OK:
                return Verdict.from_phase(result.verdict), phase, result.message
        return Verdict.INVALID_PREDICTIONS, "score", self.smoke_problem or ""

    @property
    def predictions_path(self) -> Path:
        return stored_predictions(self.competition, self.id)

    def _model_sha256(self) -> str | None:
        """The trained model's tree hash: as the node that keeps it measured it, else from its directory here."""
        if not self.phase_ok.get("train"):
            return None
        train = self.results.get("train")
        return train.model_sha256 if train is not None and train.model_sha256 else tree_sha256(self.paths.model)

    def _predictions_sha256(self) -> str | None:
        if not self.phase_ok.get("infer"):
            return None
        return regular_file_sha256(self.predictions_path, self.competition.settings.competition.predictions.max_bytes)


def score_file(competition: Competition, path: Path) -> tuple[Verdict, str, dict[str, dict[str, float]]]:
    """Validate a predictions file and score it with the competition's current metrics."""
    settings = competition.settings.competition
    ids, labels, split = competition.labels
    try:
        predictions = validate_predictions(path, ids, settings.predictions)
        scores = score_predictions(predictions, labels, split, list(settings.metrics), settings.predictions)
    except PredictionsError as exc:  # the file, or a score it makes infinite or NaN (ScoreNotFinite)
        return Verdict.INVALID_PREDICTIONS, str(exc), {}
    except (LabelsError, ValueError) as exc:
        return Verdict.INFRA_ERROR, f"scoring failed on the organizer's side: {exc}", {}
    return Verdict.SCORED, "", scores


def _phase_record(result: PhaseResult) -> dict[str, Any]:
    data = result.to_dict()
    data.pop("phase")
    data.pop("log_tail")
    data.pop("series")  # telemetry series go to MLflow, not the record
    data.pop("model_sha256")  # the manifest's
    data.pop("model_node")
    data.pop("returned")
    data.pop("model_archive")
    data.pop("start_refused")  # the round's evidence for blame; the message says it
    for key in ("host", "started_at", "ended_at"):  # no host: not run on a Ray node (manifest.host is its machine)
        if data[key] is None:
            del data[key]
    return data
