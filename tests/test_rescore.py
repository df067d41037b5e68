"""Rescoring from stored predictions (a metric fixed) and re-inferring with stored models (a test
set replaced), on records made by real containers."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
from evaluations import evaluate

from harness import leaderboard
from harness.cli import main
from harness.proofs.reinfer import reinfer
from harness.proofs.rescore import rescore
from harness.records.record import load_records
from harness.records.sinks import RecordSinks
from harness.records.tracking import Tracker
from harness.scoring import METRICS, get_metric
from harness.util.errors import HarnessError

pytestmark = pytest.mark.docker


def board(competition) -> dict[str, float | None]:
    entries = leaderboard.build(load_records(competition.paths.records), get_metric("accuracy"))
    return {entry.submission: entry.score for entry in entries}


def test_rescore_after_a_metric_fix_updates_the_leaderboard_and_keeps_history(
    competition, docker_client, behave_image, home, monkeypatch, capsys
):
    digits = competition()
    tracker = Tracker(None, "digits", home)
    record = evaluate(digits, docker_client, behave_image("constant"), tracker=tracker)
    original = record.scores
    sid = record.submission.id
    assert board(digits)[sid] == original["public"]["accuracy"]

    # "participants found a bug in the metric": the fixed accuracy, say, counts errors instead
    accuracy = METRICS["accuracy"]
    monkeypatch.setitem(METRICS, "accuracy", dataclasses.replace(accuracy, fn=lambda t, p, c: 1 - accuracy.fn(t, p, c)))
    summary = rescore(competition(), RecordSinks.for_competition(digits, tracker))
    assert summary.changed == [record.evaluation_id] and not summary.skipped
    saved = json.loads((digits.paths.records / f"{record.evaluation_id}.json").read_text())
    assert saved["scores"]["public"]["accuracy"] == pytest.approx(1 - original["public"]["accuracy"])
    assert saved["scores"]["public"]["macro_f1"] == original["public"]["macro_f1"]
    assert [(h["reason"], h["scores"]) for h in saved["history"]] == [("rescore", original)]
    assert board(digits)[sid] == saved["scores"]["public"]["accuracy"]
    history = tracker.client.get_metric_history(record.mlflow_run_id, "public_accuracy")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (0, original["public"]["accuracy"]),
        (1, saved["scores"]["public"]["accuracy"]),
    ]

    # the command line, with the metric as it ships: back to the first scores, both changes in the history
    monkeypatch.setitem(METRICS, "accuracy", accuracy)
    capsys.readouterr()
    assert main(["rescore", "digits"]) == 0
    assert "1 record(s) rescored" in capsys.readouterr().err
    saved = json.loads((digits.paths.records / f"{record.evaluation_id}.json").read_text())
    assert saved["scores"] == original and len(saved["history"]) == 2
    assert board(digits)[sid] == original["public"]["accuracy"]
    assert rescore(competition(), None).unchanged == 1  # nothing changed: no new history


def replace_test_set(competition, keep: int) -> list[str]:
    """The organizer's new test set: the first ``keep`` test ids, inputs and labels."""
    test_csv, labels_csv = competition.paths.test / "test.csv", competition.paths.labels
    ids = [row["id"] for row in csv.DictReader(test_csv.open())][:keep]
    test_csv.write_text("id\n" + "".join(f"{i}\n" for i in ids))
    rows = [row for row in csv.DictReader(labels_csv.open()) if row["id"] in set(ids)]
    with labels_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return ids


def test_reinfer_on_a_replaced_test_set_uses_the_stored_model(competition, docker_client, behave_image, capsys):
    digits = competition()
    earlier = evaluate(digits, docker_client, behave_image("constant"))
    sid = earlier.submission.id
    replace_test_set(digits, keep=100)

    capsys.readouterr()
    assert main(["reinfer", "digits", sid]) == 0
    assert f"{sid} ev-" in capsys.readouterr().out
    records = {r["evaluation_id"]: r for r in load_records(digits.paths.records)}
    (new,) = [r for r in records.values() if r["evaluation_id"] != earlier.evaluation_id]
    assert new["origin"] == {"kind": "reinfer", "evaluation_id": earlier.evaluation_id}
    assert new["verdict"] == "SCORED" and new["round_id"].startswith("reinfer-")
    assert new["phases"]["train"] == earlier.to_dict()["phases"]["train"]  # carried over, not run again
    assert new["phases"]["infer"]["verdict"] == "OK"
    assert new["manifest"]["model_sha256"] == earlier.manifest["model_sha256"]
    assert new["manifest"]["data_sha256"] != earlier.manifest["data_sha256"]
    assert new["manifest"]["predictions_sha256"] != earlier.manifest["predictions_sha256"]  # 100 rows now
    assert board(competition())[sid] == new["scores"]["public"]["accuracy"]
    # the earlier record's predictions belong to the old test set: rescoring leaves it alone
    assert "test set or its labels changed" in rescore(competition(), None).skipped[earlier.evaluation_id]

    (digits.paths.train / "train.csv").write_bytes((digits.paths.train / "train.csv").read_bytes() + b"\n")
    with pytest.raises(HarnessError, match="the training data changed since the model was trained"):
        reinfer(competition(), [sid], None, None)
