"""``harness check``: a participant's local run of the official contract, limits and verdicts.

``check_image`` is the one path: against the organizer's competition (``harness check NAME``) or
against a participant kit's dev split (``harness check --kit DIR``, a :class:`KitCompetition`)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TextIO

from harness.competition.core import Competition
from harness.competition.kit import KitCompetition
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import local_backend, run_phases
from harness.evaluation.recording import record_evaluation
from harness.limits import PHASES
from harness.limits.gpu import gpu_problem
from harness.records.record import EvaluationRecord
from harness.records.sinks import RecordSinks
from harness.runner.backend import Backend
from harness.submissions.intake import pin_image
from harness.util.errors import HarnessError, IntakeError


def check_image(competition: Competition, image: str, backend: Backend | None = None, out: TextIO | None = None) -> EvaluationRecord:
    """Check ``image`` on ``backend`` (by default the competition's ``runner.backend`` on this machine's engine),
    saying how each phase went on ``out`` (by default this process's standard error at the time of the call)."""
    backend = backend or local_backend(competition)
    _require_gpus(competition, backend)
    submission = {"id": f"check-{secrets.token_hex(6)}", "team": "local-check", "image": image, "image_digest": None}
    evaluation = Evaluation(competition, submission)
    try:
        evaluation.submission.image_digest = pin_image(
            backend, image, max_bytes=competition.settings.competition.rules.max_image_bytes
        ).digest
    except IntakeError as exc:
        evaluation.reject_image(str(exc))
    run_phases(evaluation, backend, out or sys.stderr, image)
    return record_evaluation(evaluation, competition.paths.root / "checks", RecordSinks(), backend.engine_version())


def check_kit(kit_dir: Path, image: str, backend: Backend | None = None, out: TextIO | None = None) -> EvaluationRecord:
    """``check_image`` on a participant kit: trained on its training part, inferred on its dev inputs,
    scored against its dev labels; the organizer's data is never needed, created or read."""
    competition = KitCompetition.from_kit(kit_dir)
    competition.ensure_data()
    return check_image(competition, image, backend, out)


def _require_gpus(competition: Competition, backend: Backend) -> None:
    """Refuse, before anything runs, a competition with GPU phases on a machine that cannot give a container GPUs."""
    limits = competition.settings.limits
    gpu_phases = [p for p in PHASES if limits.phase(p).gpus]
    if not gpu_phases:
        return
    problem = gpu_problem(max(limits.phase(p).gpus for p in gpu_phases), backend.engine_info())
    if problem:
        raise HarnessError(
            f"{competition.name}: the {' and '.join(gpu_phases)} phase(s) run on GPUs, and this machine cannot give a container one: {problem}"
        )
