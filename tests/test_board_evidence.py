"""Each board row's evidence: its score's bootstrap interval, whether it is separated from the next
row, and what its submission used; the tie-breaker. Built from records and predictions written here,
scored by the harness's own scoring (no container runs)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from test_leaderboard import record
from test_record import make_record

from harness import leaderboard
from harness.cli import main
from harness.evaluation.evaluation import score_file
from harness.leaderboard.html import Page, render_page
from harness.limits import Verdict
from harness.records.artifacts import stored_predictions
from harness.results import uncertainty
from harness.scoring import Metric, get_metric
from harness.scoring.bootstrap import PER_ID, per_id_scores, whole_scores
from harness.submissions.ledger import EVALUATED, Ledger
from harness.util.hashing import regular_file_sha256

AUC = ("competition.predictions.kind=probabilities", "competition.metrics.primary=roc_auc", "competition.metrics.others=[]")


def add_scored(competition, team: str, predict, *, submitted_at: str = "2026-01-01T00:00:00Z", phases: dict | None = None) -> str:
    """A submission of ``team`` in the ledger, evaluated: its predictions file (``predict(id, label)``
    gives a row's cells after the id) where a round leaves it, scored by the harness, and its record."""
    home, spec = competition.paths.root.parents[1], competition.settings.competition.predictions
    ledger = Ledger(home, competition.name)
    submission = ledger.add(team, "img", "sha256:" + "0" * 64)
    evaluation = f"ev-{submission.id}"
    submission.state, submission.evaluations = EVALUATED, [evaluation]
    ledger.save(submission)
    path = stored_predictions(competition, evaluation)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, labels, _ = competition.labels
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(spec.columns)
        writer.writerows([i, *predict(i, labels[i])] for i in ids)
    verdict, message, scores = score_file(competition, path)
    assert verdict is Verdict.SCORED, message
    data = make_record(evaluation, submission.id, team, "SCORED", scores, submitted_at=submitted_at)
    data["manifest"]["predictions_sha256"] = regular_file_sha256(path)
    if phases is not None:
        data["phases"] = phases
    competition.paths.records.mkdir(parents=True, exist_ok=True)
    (competition.paths.records / f"{evaluation}.json").write_text(json.dumps(data))
    return submission.id


def wrong_on(rows: set[str]):
    """Label predictions, right except on ``rows``."""
    return lambda i, label: [str((int(label) + 1) % 10) if i in rows else label]


def public_ids(competition) -> list[str]:
    ids, _, split = competition.labels
    return [i for i in ids if split[i] == "public"]


def board(capsys, *overrides: str) -> list[dict]:
    assert main(["leaderboard", "digits", "--format", "json", *overrides]) == 0
    return json.loads(capsys.readouterr().out)


def forget(competition=None) -> None:
    """Drop the resampled scores kept in memory, and with ``competition`` those kept beside its runs:
    the next board computes its evidence anew."""
    uncertainty._scores.clear()
    for kept in competition.paths.runs.glob("*/resampled-*") if competition is not None else ():
        kept.unlink()


def test_one_row_apart_is_tied_a_wide_margin_is_not_and_the_board_is_reproducible(competition, capsys):
    digits, public = competition(), public_ids(competition())
    add_scored(digits, "one-better", wrong_on(set(public[:10])))
    add_scored(digits, "one-worse", wrong_on(set(public[:11])))  # one test row more wrong
    add_scored(digits, "far-behind", wrong_on(set(public[:60])))
    forget(digits)
    rows = board(capsys)
    assert [r["team"] for r in rows] == ["one-better", "one-worse", "far-behind"]
    assert rows[0]["score"] - rows[1]["score"] == pytest.approx(1 / len(public))
    assert rows[0]["tied_with_next"] is True and 0.5 < rows[0]["beats_next"] < 0.95
    assert rows[1]["tied_with_next"] is False and rows[1]["beats_next"] > 0.99
    assert rows[2]["beats_next"] is None and rows[2]["tied_with_next"] is None  # no row below it
    for r in rows:
        assert r["low"] <= r["score"] <= r["high"] and r["low"] < r["high"]
    assert rows[2]["high"] < rows[1]["low"]  # a wide margin: the intervals do not even overlap

    assert main(["leaderboard", "digits", "--format", "json"]) == 0
    first = capsys.readouterr().out
    assert len(list(digits.paths.runs.glob("*/resampled-*.f8"))) == 3
    forget()  # read back from beside the runs
    assert main(["leaderboard", "digits", "--format", "json"]) == 0
    assert capsys.readouterr().out == first
    forget(digits)  # computed anew
    assert main(["leaderboard", "digits", "--format", "json"]) == 0
    assert capsys.readouterr().out == first  # the same seed, the same bytes

    assert main(["leaderboard", "digits"]) == 0
    table = capsys.readouterr().out
    assert "beats next" in table and "tied" in table and "95% bootstrap interval" in table
    assert f"[{rows[0]['low']:.5f}, {rows[0]['high']:.5f}]" in table

    add_scored(digits, "late", wrong_on(set(public[:30])))
    grown = board(capsys)  # only the new evaluation's resamples are computed, the others' are kept
    forget(digits)
    assert board(capsys) == grown  # the same as all computed at once
    assert [r["team"] for r in grown] == ["one-better", "one-worse", "late", "far-behind"]

    private = board(capsys, "--private", "--organizer", "competition.leaderboard.confidence=0.8")
    assert all(r["low"] <= r["score"] <= r["high"] for r in private)  # its own ids, its own resamples
    assert board(capsys, "competition.leaderboard.resamples=0")[0]["low"] is None


def test_changed_predictions_give_no_interval(competition, capsys):
    digits = competition()
    add_scored(digits, "kept", wrong_on(set()))
    gone = add_scored(digits, "changed", wrong_on(set(public_ids(digits)[:5])))
    stored_predictions(digits, f"ev-{gone}").write_text("id,label\n")
    forget()
    rows = {r["team"]: r for r in board(capsys)}
    assert rows["changed"]["low"] is None and rows["kept"]["low"] is not None
    assert rows["kept"]["beats_next"] is None  # its pair has no evidence


def test_a_whole_metric_auc_board(competition, capsys):
    digits = competition(*AUC)
    rng = np.random.default_rng(0)

    def noisy(scale: float):
        def predict(i: str, label: str) -> list[str]:
            p = rng.random(10) * scale
            p[int(label)] += 1.0
            return [f"{v:.6f}" for v in p / p.sum()]

        return predict

    add_scored(digits, "sharp", noisy(1.0))
    add_scored(digits, "blurred", noisy(40.0))
    forget()
    rows = board(capsys, *AUC, "competition.leaderboard.resamples=200")
    assert [r["team"] for r in rows] == ["sharp", "blurred"]
    assert all(r["low"] <= r["score"] <= r["high"] for r in rows)
    assert rows[0]["tied_with_next"] is False and rows[0]["beats_next"] == 1.0


def test_the_per_id_path_equals_the_metric_computed_whole_on_each_resample():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 500).astype(str).astype(object)
    predicted = [np.where(rng.random(500) < q, truth, "x").astype(object) for q in (0.9, 0.7, 0.89)]
    accuracy = get_metric("accuracy")
    values = np.vstack([PER_ID["accuracy"].values(truth, p, ()) for p in predicted])
    fast = per_id_scores(values, PER_ID["accuracy"], 130, seed=7)
    whole = whole_scores(truth, predicted, accuracy, (), 130, seed=7)
    assert fast.shape == (130, 3) and np.allclose(fast, whole, rtol=0, atol=1e-12)
    assert np.array_equal(fast, per_id_scores(values, PER_ID["accuracy"], 130, seed=7))
    assert not np.array_equal(fast, per_id_scores(values, PER_ID["accuracy"], 130, seed=8))
    values = rng.random((40, 3000))
    rmse = per_id_scores(values, PER_ID["rmse"], 5, seed=3)
    assert np.allclose(rmse**2, per_id_scores(values, PER_ID["mae"], 5, seed=3))  # the same resamples, squared root taken
    mae = per_id_scores(values, PER_ID["mae"], 70, seed=3)
    for alone in (slice(0, 1), slice(2, 7), slice(9, 40)):  # computed with other submissions or alone: the same bits
        assert np.array_equal(mae[:, alone], per_id_scores(values[alone], PER_ID["mae"], 70, seed=3))
    assert np.allclose(mae, per_id_scores(values, PER_ID["mae"], 70, seed=3), rtol=1e-12)


@pytest.mark.parametrize("classes", [("0", "1"), ("a", "b", "c")])
def test_resampled_auc_is_the_metric_computed_again_on_each_resample(classes):
    """The weighted AUC of each resample equals the harness's roc_auc (sklearn's) on the drawn ids,
    scores with ties included, a class missing from some resamples included."""
    rng = np.random.default_rng(2)
    truth = rng.choice(np.asarray(classes, dtype=object), 40, p=[0.95, 0.05] if len(classes) == 2 else [0.45, 0.45, 0.1])
    proba = np.round(rng.random((40, len(classes))), 1)  # rounded: many ties
    proba /= proba.sum(axis=1, keepdims=True) + 1e-9
    auc = get_metric("roc_auc")
    recomputed = Metric(auc.name, auc.higher_is_better, auc.needs, lambda *a: auc.fn(*a))  # not the built-in: the slow path
    fast = whole_scores(truth, [proba], auc, classes, 60, seed=5)
    slow = whole_scores(truth, [proba], recomputed, classes, 60, seed=5)
    assert np.isnan(slow).any() == (len(classes) == 2)  # a resample without a positive: undefined, both ways
    assert np.allclose(fast, slow, rtol=0, atol=1e-12, equal_nan=True)


def phases(train_wall: float, *, gpu: bool = False) -> dict:
    phase = json.loads(json.dumps(make_record("e", "s", "t")["phases"]["train"]))
    train = {**phase, "wall_s": train_wall, "cpu_s": 2.0, "peak_memory_bytes": 300 * 2**20}
    infer = {**phase, "wall_s": 0.5, "cpu_s": 0.25, "peak_memory_bytes": 200 * 2**20}
    if gpu:
        infer.update(gpu_ids=["0", "1"], peak_gpu_memory_bytes=3 * 2**30)
    return {"train": train, "infer": infer}


def test_resources_appear_in_every_format():
    acc = get_metric("accuracy")
    records = [{**record("a", "A", public=0.9), "phases": phases(12.0, gpu=True)}, {**record("b", "B", public=0.8), "phases": phases(3.0)}]
    entries = leaderboard.build(records, acc)
    assert entries[0].resources == {
        "train_wall_s": 12.0,
        "infer_wall_s": 0.5,
        "cpu_s": 2.25,
        "peak_memory_bytes": 300 * 2**20,
        "gpu_s": 1.0,  # infer's 0.5 s on two GPUs
        "peak_gpu_memory_bytes": 3 * 2**30,
    }
    assert entries[1].resources["gpu_s"] is None and entries[1].resources["peak_gpu_memory_bytes"] is None
    table = leaderboard.render(entries, "table", acc, "T")
    assert all(h in table for h in ("train s", "infer s", "CPU s", "peak memory", "GPU s", "peak GPU memory"))
    assert "12.0" in table and "300.0 MiB" in table and "3.0 GiB" in table
    assert "GPU s" not in leaderboard.render(entries[1:], "table", acc, "T")  # no GPU anywhere: no GPU columns
    rows = list(csv.DictReader(io.StringIO(leaderboard.render(entries, "csv", acc, "T"))))
    assert rows[0]["train_wall_s"] == "12.0" and rows[0]["gpu_s"] == "1.0" and rows[1]["gpu_s"] == ""
    assert json.loads(leaderboard.render(entries, "json", acc, "T"))[1]["resources"]["cpu_s"] == 2.25
    html = render_page(Page("T", "Public", acc, "public", "best", "2026-01-01T00:00:00Z"), entries, [])
    assert "peak GPU memory" in html and ">12.0<" in html and ">3.0 GiB<" in html
    from harness.competition.schema import RESOURCES
    from harness.leaderboard.columns import RESOURCE_COLUMNS

    assert tuple(c.name for c in RESOURCE_COLUMNS) == RESOURCES  # a column per resource the tie-breaker may name


def test_the_tie_breaker_orders_equal_scores(home, capsys):
    acc = get_metric("accuracy")
    records = [
        {**record("slow", "S", public=0.9, submitted_at="2026-01-01T00:00:00Z"), "phases": phases(50.0)},
        {**record("fast", "F", public=0.9, submitted_at="2026-01-02T00:00:00Z"), "phases": phases(5.0)},
        {**record("unmeasured", "U", public=0.9, submitted_at="2026-01-01T00:00:00Z")},
        {**record("best", "B", public=0.95, submitted_at="2026-01-03T00:00:00Z"), "phases": phases(99.0)},
    ]
    assert [e.team for e in leaderboard.build(records, acc)] == ["B", "S", "U", "F"]  # equal scores: the earlier one
    assert [e.team for e in leaderboard.build(records, acc, tie_breaker="train_wall_s")] == ["B", "F", "S", "U"]
    assert main(["leaderboard", "digits", "competition.leaderboard.tie_breaker=colour"]) == 2
    err = capsys.readouterr().err
    assert "competition.leaderboard.tie_breaker" in err and "train_wall_s" in err and "Traceback" not in err
