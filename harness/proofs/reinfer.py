"""``harness reinfer``: run only the ``infer`` phase again, with each submission's stored model.

For a replaced test set (a leak was found): the organizer puts the new test inputs in
``data/test`` and the new labels in ``hidden/labels.csv``; each chosen submission's model, as its
latest record trained it, predicts the new test set. Everything is checked before anything runs:
the training data must be the data the model was trained on, the model must be restored from the
artifact store (or, not archived yet, from this machine) with the hash its record gives, and the
image must still be here. So a re-infer runs on any machine with the competition's work directory,
whichever node trained the model. Each result is a new record
(``origin.kind: reinfer``), listed in the ledger under its submission, which the leaderboard
takes as the submission's latest. After ``finalize`` a re-infer changes final results: it is
refused unless forced, and a forced one keeps the outcome it replaced in the new record's history.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TextIO

from harness.competition.core import Competition
from harness.competition.data_manifest import changes_since
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import local_backend, missing_image, run_phases
from harness.limits import PhaseVerdict
from harness.proofs.listing import list_evaluation, moderated_submissions, refuse_after_finalize
from harness.records.artifacts import stored_model
from harness.records.model_store import ModelMissing, ModelStore, ModelStoreError, restore_kept
from harness.records.record import EvaluationRecord, RecordError, latest_record, load_record, unlisted
from harness.records.sinks import RecordSinks
from harness.results import Results
from harness.runner.backend import Backend
from harness.util.clock import stamped_id, utc_now
from harness.util.errors import HarnessError

TRAINING_DATA = ("data/train/",)


def reinfer(
    competition: Competition,
    submission_ids: list[str],
    backend: Backend | None,
    sinks: RecordSinks,
    out: TextIO | None = None,
    *,
    force: bool = False,
) -> list[EvaluationRecord]:
    """Re-infer each submission on ``backend`` (None: the competition's ``runner.backend`` on this
    machine's engine); after ``finalize`` only with ``force`` (a HarnessError otherwise)."""
    out = out or sys.stderr  # looked up when called: standard error may have been replaced since import
    forced = refuse_after_finalize(competition, "reinfer", force)
    listed = Results(competition).listing()
    moderated = moderated_submissions(competition)
    if ended := [f"{key} ({moderated[key]})" for key in submission_ids if key in moderated]:
        raise HarnessError(f"cannot re-infer {', '.join(ended)}: a withdrawn or disqualified submission is never evaluated again")
    backend = backend or local_backend(competition)
    earlier = [_earlier(competition, key, backend, listed) for key in submission_ids]  # all checked before any runs
    batch = stamped_id("reinfer")
    evaluations = _with_models(competition, earlier, batch)
    docker_version = backend.engine_version()
    records = []
    for before, evaluation in zip(earlier, evaluations, strict=True):
        run_phases(evaluation, backend, out, before.submission.image)
        if evaluation.infra_failed:
            print(f"{before.submission.id}: infrastructure failure, nothing recorded; run it again", file=out)
            continue
        record = evaluation.conclude(docker_version)
        if forced:
            record.history.append(_replaced(before, forced))
        list_evaluation(competition, record.submission.id, record.evaluation_id)  # listed first: a crash leaves no stray
        sinks.evaluated(record, competition.paths.records)
        records.append(record)
    return records


def _with_models(competition: Competition, earlier: list[EvaluationRecord], batch: str) -> list[Evaluation]:
    """An evaluation for each record, its model restored and checked; none is left when one cannot be."""
    store = ModelStore.for_competition(competition)
    evaluations: list[Evaluation] = []
    try:
        for before in earlier:
            evaluations.append(
                evaluation := Evaluation(competition.for_phase(before.phase), before.submission, round_id=batch, smoke=None)
            )  # its model is trained: no smoke stage
            evaluation.reuse_model(before)
            _restore(competition, store, before, evaluation.paths.model)
    except HarnessError:
        for evaluation in evaluations:
            shutil.rmtree(evaluation.run_dir, ignore_errors=True)
        raise
    return evaluations


def _restore(competition: Competition, store: ModelStore, record: EvaluationRecord, target: Path) -> None:
    """The model ``record`` used, into ``target``: from the artifact store, else from this machine
    (a model whose archive ``harness sync`` has not sent yet), its hash checked either way."""
    sha256 = record.manifest["model_sha256"]
    try:
        try:
            store.restore(sha256, target)
        except ModelMissing as missing:
            kept = stored_model(competition, record)
            if kept is None:
                raise ModelStoreError(f"{missing}, and this machine does not keep it either") from None
            restore_kept(kept, sha256, target)
    except ModelStoreError as exc:
        raise HarnessError(f"{record.submission.id}: cannot re-infer from {record.evaluation_id}: {exc}") from None


def _replaced(earlier: EvaluationRecord, reason: str) -> dict:
    """The outcome a forced re-infer replaces, as a history entry of the new record."""
    return {
        "replaced_at": utc_now(),
        "reason": f"{reason}: replaces {earlier.evaluation_id}",
        "verdict": earlier.verdict,
        "failed_phase": earlier.failed_phase,
        "message": earlier.message,
        "scores": earlier.scores,
    }


def _earlier(competition: Competition, key: str, backend: Backend, listed: dict[str, list[str]]) -> EvaluationRecord:
    """The record whose model is reused, once it proved usable (valid, signed when a key is set, the ledger's)."""
    path = latest_record(competition.paths.records, key, listed)
    if path is None:
        raise HarnessError(f"no evaluation record for {key!r} in {competition.name}")
    try:
        record = load_record(path)
    except RecordError as exc:
        raise HarnessError(f"{key}: cannot re-infer: {exc}") from None
    if why := unlisted(record.to_dict(), listed, strict=False):
        raise HarnessError(f"{key}: cannot re-infer from {path.name}: {why}")
    problem = _unusable(competition, record) or missing_image(backend, record.submission.image_digest)
    if problem:
        raise HarnessError(f"{key}: cannot re-infer from {record.evaluation_id}: {problem}")
    return record


def _unusable(competition: Competition, record: EvaluationRecord) -> str | None:
    if record.phases.train is None or record.phases.train.verdict is not PhaseVerdict.OK or not record.manifest.get("model_sha256"):
        return "its train phase did not succeed, so there is no model"
    changed = changes_since(competition.paths.root, competition.data_manifest, record.manifest["data_sha256"], *TRAINING_DATA)
    if changed is None:
        return "the data changed and the record's per-file manifest is not kept here, so the training data cannot be compared"
    if changed:
        return f"the training data changed since the model was trained ({', '.join(map(str, changed[:3]))})"
    return None
