"""``harness audit`` with real containers: the deterministic sample passes (its repeat trains the
same model), a changed data file refuses the audit and is named, a non-deterministic image is
flagged, a deterministic one over two repeats is said to be so."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform

import pytest
from evaluations import evaluate

import harness
from harness.cli import main
from harness.proofs.audit import FAIL, PASS, REFUSED, audit, audit_dir
from harness.records.sinks import RecordSinks
from harness.records.tracking import Tracker

pytestmark = pytest.mark.docker


def quiet():
    return open(os.devnull, "w")


@pytest.mark.slow
def test_sample_audit_passes_with_identical_hashes(competition, docker_client, sample_image, home):
    """The sample is deterministic: two independent trains (fresh containers, empty model
    directories) from the same data and seed leave byte-identical models, and their infers the same
    predictions; and it is good (accuracy >= 0.92 on each part of the test set: each preparation's
    secret draws the public/private parts and the rows' order anew, and a part's accuracy, about 0.96
    overall, measured 0.944 on one draw). The repeats past
    the first (the deterministic flag, the spread): a behaviour image, in the last test here."""
    digits = competition()
    tracker = Tracker(None, "digits", home)
    record = evaluate(digits, docker_client, sample_image, tracker=tracker)
    assert record.verdict == "SCORED", record.message
    assert min(record.scores["public"]["accuracy"], record.scores["private"]["accuracy"]) >= 0.92, record.scores
    train_log = digits.paths.runs / record.evaluation_id / "logs" / "train.stdout.log"
    assert "cross-validation accuracy" in train_log.read_text()

    report = audit(digits, record.submission.id, None, RecordSinks.for_competition(digits, tracker), out=quiet())
    assert report.status == PASS, report.differences
    assert [run["predictions_sha256"] for run in report.runs] == [record.manifest["predictions_sha256"]]
    assert [run["model_sha256"] for run in report.runs] == [record.manifest["model_sha256"]]
    assert all(run["scores"] == record.scores for run in report.runs)
    assert not [d for d in report.differences if d.fatal]
    directory = audit_dir(digits, report.audit_id)
    assert json.loads((directory / "report.json").read_text())["status"] == PASS
    assert "audit " + report.audit_id + ": PASS" in (directory / "report.txt").read_text()
    assert ">PASS<" in (directory / "report.html").read_text()
    # the report travels with the original MLflow run
    run = tracker.client.get_run(record.mlflow_run_id)
    assert run.data.tags["harness.audit"] == f"PASS ({report.audit_id})"
    assert {a.path for a in tracker.client.list_artifacts(record.mlflow_run_id, f"audits/{report.audit_id}")} == {
        f"audits/{report.audit_id}/report.{ext}" for ext in ("json", "txt", "html")
    }
    # the repeats are kept beside the report, never among the records the leaderboard reads
    assert sorted(p.name for p in digits.paths.records.glob("*.json")) == [f"{record.evaluation_id}.json"]
    assert len(list(directory.glob("ev-*.json"))) == 1


def test_audit_after_a_data_file_changed_refuses_and_names_it(competition, docker_client, behave_image, capsys):
    digits = competition()
    record = evaluate(digits, docker_client, behave_image("constant"))
    changed = digits.paths.test / "test.csv"
    changed.write_bytes(changed.read_bytes() + b"\n")

    capsys.readouterr()
    status = main(["audit", "digits", record.submission.id])
    out, err = capsys.readouterr()
    assert status == 2
    assert "harness: audit refused: cannot re-run from the record: different data (data/test/test.csv (changed))" in err
    assert "FAIL  data      data/test/test.csv (changed)" in out
    report = json.loads(next(digits.paths.root.glob("audits/*/report.json")).read_text())
    assert report["status"] == REFUSED and report["runs"] == []
    assert [(d["kind"], d["what"]) for d in report["differences"] if d["fatal"]] == [("data", "data/test/test.csv (changed)")]


def test_audit_refuses_when_the_image_is_gone(competition, docker_client, behave_image):
    digits = competition()
    record = evaluate(digits, docker_client, behave_image("constant"))
    path = digits.paths.records / f"{record.evaluation_id}.json"
    data = json.loads(path.read_text())
    data["submission"]["image_digest"] = data["manifest"]["image_digest"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(data))
    report = audit(digits, record.evaluation_id, out=quiet())
    assert report.status == REFUSED and report.runs == []
    assert "is no longer on this machine's Docker engine" in report.differences[0].observed


def test_non_deterministic_image_is_flagged_with_the_spread_of_its_scores(competition, docker_client, behave_image):
    digits = competition()
    record = evaluate(digits, docker_client, behave_image("random"))
    assert record.verdict == "SCORED"
    report = audit(digits, record.submission.id, repeats=2, out=quiet())
    assert report.status == FAIL and report.deterministic is False
    assert report.reason.startswith("not deterministic")
    assert len({run["predictions_sha256"] for run in report.runs} | {record.manifest["predictions_sha256"]}) == 3
    assert all(figures["n"] == 3 for figures in report.spread.values())
    assert any(figures["max"] > figures["min"] for figures in report.spread.values())
    assert {d.kind for d in report.differences if d.fatal} >= {"hashes", "scores"}
    assert not [d for d in report.differences if d.kind == "hashes" and "model" in d.what]  # its model is deterministic


def test_an_audit_by_another_environment_passes_and_names_each_package_that_differs(competition, docker_client, behave_image):
    """The record keeps the Python environment that made it; an audit made with another one passes
    (the run is the same) and notes each package added, removed or of another version. Over two
    repeats a deterministic image is said to be so: the same hashes each time, no spread, each
    repeat's record kept beside the report."""
    import numpy

    digits = competition()
    record = evaluate(digits, docker_client, behave_image("constant"))
    path = digits.paths.records / f"{record.evaluation_id}.json"
    data = json.loads(path.read_text())
    made_by = data["manifest"]["environment"]
    assert made_by["packages"]["numpy"] == numpy.__version__ and made_by["packages"]["harness"] == harness.__version__
    assert made_by["python"] == platform.python_version() and len(made_by["sha256"]) == 64
    made_by["packages"]["numpy"] = "0.0.1"
    made_by["packages"]["left-pad"] = "1.0"
    del made_by["packages"]["pyyaml"]
    made_by["sha256"] = "0" * 64
    path.write_text(json.dumps(data))

    report = audit(digits, record.evaluation_id, repeats=2, out=quiet())
    assert report.status == PASS, report.differences
    assert report.deterministic is True
    assert [run["predictions_sha256"] for run in report.runs] == [record.manifest["predictions_sha256"]] * 2
    assert [run["model_sha256"] for run in report.runs] == [record.manifest["model_sha256"]] * 2
    assert all(run["scores"] == record.scores for run in report.runs)
    assert (report.spread["public.accuracy"]["stdev"], report.spread["public.accuracy"]["n"]) == (0, 3)
    assert len(list(audit_dir(digits, report.audit_id).glob("ev-*.json"))) == 2
    noted = {d.what for d in report.differences if d.kind == "harness"}
    assert noted == {
        f"environment: numpy 0.0.1 -> {numpy.__version__}",
        "environment: -left-pad 1.0",
        f"environment: +pyyaml {importlib.metadata.version('pyyaml')}",
    }
    assert not [d for d in report.differences if d.fatal]
    assert f"numpy 0.0.1 -> {numpy.__version__}" in (audit_dir(digits, report.audit_id) / "report.txt").read_text()
