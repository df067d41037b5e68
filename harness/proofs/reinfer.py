"""``harness reinfer``: run only the ``infer`` phase again, with each submission's stored model.

For a replaced test set (a leak was found): the organizer puts the new test inputs in
``data/test`` and the new labels in ``hidden/labels.csv``; each chosen submission's model, as its
latest record trained it, predicts the new test set. Everything is checked before anything runs:
the training data must be the data the model was trained on, the stored model must still have
the hash its record gives, and the image must still be here. Each result is a new record
(``origin.kind: reinfer``), which the leaderboard takes as the submission's latest.
"""

from __future__ import annotations

import sys
from typing import TextIO

import docker

from harness.competition.core import Competition
from harness.competition.data_manifest import changes_since
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import local_backend, missing_image, run_phases
from harness.evaluation.recording import record_evaluation
from harness.records.artifacts import stored_model
from harness.records.record import EvaluationRecord, latest_record, load_record
from harness.records.sinks import RecordSinks
from harness.util.clock import stamped_id
from harness.util.errors import HarnessError
from harness.util.hashing import tree_sha256

TRAINING_DATA = ("data/train/",)


def reinfer(
    competition: Competition, submission_ids: list[str], client: docker.DockerClient, sinks: RecordSinks, out: TextIO = sys.stderr
) -> list[EvaluationRecord]:
    earlier = [_earlier(competition, key, client) for key in submission_ids]  # all checked before any runs
    batch = stamped_id("reinfer")
    backend = local_backend(competition, client)
    docker_version = backend.engine_version()
    records = []
    for record in earlier:
        evaluation = Evaluation(competition, record.submission, round_id=batch)
        evaluation.reuse_model(record)
        run_phases(evaluation, backend, out, record.submission["image"])
        if evaluation.infra_failed:
            print(f"{record.submission['id']}: infrastructure failure, nothing recorded; run it again", file=out)
            continue
        records.append(record_evaluation(evaluation, competition.paths.records, sinks, docker_version))
    return records


def _earlier(competition: Competition, key: str, client: docker.DockerClient) -> EvaluationRecord:
    """The record whose model is reused, once it proved usable."""
    path = latest_record(competition.paths.records, key)
    if path is None:
        raise HarnessError(f"no evaluation record for {key!r} in {competition.name}")
    record = load_record(path)
    problem = _unusable(competition, record) or missing_image(client, record.submission.get("image_digest"))
    if problem:
        raise HarnessError(f"{key}: cannot re-infer from {record.evaluation_id}: {problem}")
    return record


def _unusable(competition: Competition, record: EvaluationRecord) -> str | None:
    recorded_model = record.manifest.get("model_sha256")
    if record.phases.get("train", {}).get("verdict") != "OK" or not recorded_model:
        return "its train phase did not succeed, so there is no model"
    if tree_sha256(stored_model(competition, record)) != recorded_model:
        return "the stored model is gone or differs from the one its record hashed"
    changed = changes_since(competition.paths.root, competition.data_manifest, record.manifest["data_sha256"], *TRAINING_DATA)
    if changed is None:
        return "the data changed and the record's per-file manifest is not kept here, so the training data cannot be compared"
    if changed:
        return f"the training data changed since the model was trained ({', '.join(map(str, changed[:3]))})"
    return None
