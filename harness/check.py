"""``harness check``: a participant's local run of the official contract, limits and verdicts."""

from __future__ import annotations

import secrets
import sys
from typing import TextIO

import docker

from harness.competition import Competition
from harness.errors import IntakeError
from harness.evaluation import Evaluation
from harness.intake import pin_image
from harness.record import EvaluationRecord
from harness.recording import record_evaluation
from runner.docker_backend import DockerBackend


def check_image(competition: Competition, image: str, client: docker.DockerClient, out: TextIO = sys.stderr) -> EvaluationRecord:
    submission = {"id": f"check-{secrets.token_hex(6)}", "team": "local-check", "image": image, "image_digest": None}
    evaluation = Evaluation(competition, submission)
    try:
        submission["image_digest"] = pin_image(client, image).digest
    except IntakeError as exc:
        evaluation.reject_image(str(exc))
    backend = DockerBackend(client)
    while (spec := evaluation.next_phase()) is not None:
        print(f"{spec.phase}: running {image} (limits: {spec.limits.cpus:g} cpu, {spec.limits.memory} bytes, {spec.limits.wall_clock_s:g} s)", file=out, flush=True)
        result = backend.run(spec)
        evaluation.accept(result)
        print(f"{spec.phase}: {result.verdict.value} in {result.wall_s:.1f} s", file=out, flush=True)
    return record_evaluation(evaluation, competition.paths.root / "checks", None, client.version().get("Version", ""))
