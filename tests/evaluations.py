"""Evaluate a test submission in this process and record it as a round would (no Ray, no ledger)."""

from __future__ import annotations

import os
import secrets

import docker

from harness.competition.core import Competition
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import run_phases
from harness.evaluation.recording import record_evaluation
from harness.records.record import EvaluationRecord
from harness.records.sinks import RecordSinks
from harness.records.tracking import Tracker
from harness.runner.docker_backend import DockerBackend
from harness.submissions.intake import pin_image
from harness.util.clock import utc_now


def evaluate(
    competition: Competition, client: docker.DockerClient, image: str, team: str = "team", tracker: Tracker | None = None
) -> EvaluationRecord:
    backend = DockerBackend(client)
    submission = {
        "id": f"sub-{secrets.token_hex(6)}",
        "team": team,
        "image": image,
        "image_digest": pin_image(backend, image).digest,
        "submitted_at": utc_now(),
    }
    evaluation = Evaluation(competition, submission, round_id="round-test")
    with open(os.devnull, "w") as quiet:
        run_phases(evaluation, backend, quiet, image)
    sinks = RecordSinks.for_competition(competition, tracker) if tracker is not None else RecordSinks()
    return record_evaluation(evaluation, competition.paths.records, sinks, client.version().get("Version", ""))
