"""The second bundled example, `diabetes`: a regression scored by RMSE, built by the `tables` builder from
scikit-learn's bundled table and split by whole age bands; the same commands as digits, and its
numpy sample (least squares) scores on its board."""

from __future__ import annotations

import csv
import json

import pytest
from test_round import harness

from harness.cli import main
from harness.participant.images import TABLES_SAMPLE_TAG


def rows(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_data_builds_through_the_tables_builder_and_checks_clean(home, capsys, tmp_path):
    code, out, err = run(capsys, "data", "prepare", "diabetes")
    assert code == 0, err
    root = home / "competitions" / "diabetes"
    train, test, labels = rows(root / "data/train/train.csv"), rows(root / "data/test/test.csv"), rows(root / "hidden/labels.csv")
    assert len(train) + len(test) == 442 and 100 <= len(test) <= 180  # whole age bands, about 0.3 of the patients
    assert list(train[0]) == ["id", "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "age_band", "progression"]
    assert "progression" not in test[0] and [r["id"] for r in labels] == [r["id"] for r in test]
    assert not {r["age_band"] for r in train} & {r["age_band"] for r in test}
    assert all(r["age_band"] == f"{int(r['age']) // 5 * 5}-{int(r['age']) // 5 * 5 + 4}" for r in train + test)
    assert json.loads((root / ".prepared").read_text())["builder"] == "tables"
    assert "whole groups of `age_band`" in (root / "data/train/DESCRIPTION.md").read_text()
    code, out, err = run(capsys, "data", "check", "diabetes")
    assert code == 0 and "0 error(s), 0 warning(s)" in out and "OK       group split: no age_band value" in out
    code, out, err = run(capsys, "kit", "diabetes", "--output", str(tmp_path / "kit"))
    assert code == 0, err
    assert "least squares" in (tmp_path / "kit/sample-submission/main.py").read_text()  # the kit ships the tables sample
    assert "source" not in json.loads((tmp_path / "kit/kit.json").read_text())["config"]["competition"]


@pytest.mark.docker
def test_its_numpy_sample_scores_on_the_board(home, sample_image):
    """Submitted, evaluated in a round and ranked, as the organizer's commands do it for digits."""
    done = harness(home, "submit", "diabetes", "--team", "sample", "--image", TABLES_SAMPLE_TAG)
    assert done.returncode == 0, done.stderr
    done = harness(home, "round", "diabetes", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["verdicts"] == {"SCORED": 1}, done.stderr
    done = harness(home, "leaderboard", "diabetes", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["rank"], row["team"], row["verdict"]) == (1, "sample", "SCORED")
    assert 30 < row["score"] < 75  # least squares: an RMSE about 55, where predicting the mean gives about 78
    assert row["others"]["mae"] < row["score"] and row["low"] <= row["score"] <= row["high"]
