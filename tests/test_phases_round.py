"""A two-phase competition end to end through the command line, in process (one Ray for all rounds):
development rounds, a leak answered by a new phase (the old board kept and marked), then the final
phase evaluated from the teams' selections alone and ranked on its own test set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_round import harness

from harness.submissions.ledger import Ledger

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PHASES = "competition.phases=[{name:development,test_fraction:0.4},{name:final,test_fraction:0.4,final:true}]"
SETTINGS = [PHASES, "competition.smoke.enabled=false", "competition.quota.per_day=null"]


def run(home: Path, *args: str) -> str:
    done = harness(home, *args, *SETTINGS)
    assert done.returncode == 0, done.stderr
    return done.stdout


def submit(home: Path, team: str, image: str) -> str:
    return run(home, "submit", "digits", "--team", team, "--image", image).strip()


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def records(home: Path) -> dict[str, dict]:
    found = (json.loads(p.read_text()) for p in (home / "competitions/digits/records").glob("*.json"))
    return {r["submission"]["id"]: r for r in found}


def board(home: Path, *args: str) -> list[dict]:
    return json.loads(run(home, "leaderboard", "digits", "--json", *args))


def test_two_phases_a_leak_and_the_final_phase_from_the_selections(home, behave_image):
    root = home / "competitions/digits"
    constant, guess = behave_image("constant"), behave_image("random")
    a1, a2, b1 = submit(home, "alpha", constant), submit(home, "alpha", guess), submit(home, "beta", guess)
    run(home, "round", "digits")
    dev_ids = [r["id"] for r in rows(root / "data/phases/development/test/test.csv")]
    final_labels = {r["id"]: r for r in rows(root / "hidden/phases/final/labels.csv")}
    for sid in (a1, a2, b1):
        record = records(home)[sid]
        assert record["phase"] == "development" and record["verdict"] == "SCORED"
        predicted = rows(root / "runs" / record["evaluation_id"] / "output/predictions.csv")
        assert [p["id"] for p in predicted] == dev_ids  # the development phase's test set, not the pool
    development = board(home)
    assert {e["team"] for e in development} == {"alpha", "beta"}

    # A leak: a new phase on an unused slice; the old board stays, marked; submissions go to the new one.
    run(home, "phase", "open", "digits", "development2", "--test-fraction", "0.2", "--reason", "labels leaked")
    assert board(home, "--phase", "development") == development
    table = run(home, "leaderboard", "digits", "--phase", "development")
    assert "phase development (superseded by development2 at" in table and "labels leaked" in table
    assert board(home) == []  # the open phase's board: development2, empty so far
    g1 = submit(home, "gamma", constant)  # evaluated by the final phase's round below, in its own phase
    assert Ledger(home, "digits").get(g1).competition_phase == "development2"

    # The final phase, from the selections: alpha's a1 (not a2), beta's b1; gamma has no score yet.
    run(home, "select", "digits", a1, "--team", "alpha")
    run(home, "select", "digits", b1, "--team", "beta")
    refused = harness(home, "finalize", "digits", *SETTINGS)
    assert refused.returncode != 0 and "harness phase run digits final" in refused.stderr
    queued = json.loads(run(home, "phase", "run", "digits", "final", "--json"))["queued"]
    assert sorted(queued.values()) == sorted([a1, b1])
    assert records(home)[g1]["phase"] == "development2"
    assert [e["submission"] for e in board(home)] == [g1]  # the open phase's board
    assert board(home, "--phase", "development") == development  # the superseded board, as it was
    # Again: nothing twice; gamma, scored since and without a selection, gets its private board's fallback.
    again = json.loads(run(home, "phase", "run", "digits", "final", "--json"))["queued"]
    assert list(again.values()) == [g1] and records(home)[next(iter(again))]["phase"] == "final"
    queued.update(again)
    ledger = Ledger(home, "digits")
    for rerun, source in queued.items():
        entry, original = ledger.get(rerun), ledger.get(source)
        assert (entry.team, entry.image_digest, entry.rerun_of) == (original.team, original.image_digest, source)
        assert entry.competition_phase == "final" and not entry.charged
        record = records(home)[rerun]
        assert record["phase"] == "final" and "public" not in record["scores"]  # the final test set is all private
        predicted = {p["id"]: p["label"] for p in rows(root / "runs" / record["evaluation_id"] / "output/predictions.csv")}
        assert set(predicted) == set(final_labels)  # its own test set, disjoint from the others
        assert not set(predicted) & set(dev_ids)
        right = sum(predicted[i] == final_labels[i]["label"] for i in final_labels) / len(final_labels)
        assert record["scores"]["private"]["accuracy"] == pytest.approx(right)
    late = harness(home, "select", "digits", a2, "--team", "alpha", *SETTINGS)
    assert late.returncode != 0 and "can no longer change" in late.stderr

    # Ranked on the final phase's own test set, each team with its best re-run.
    final = board(home, "--phase", "final", "--private", "--organizer")
    by_score = sorted(queued, key=lambda rerun: (-records(home)[rerun]["scores"]["private"]["accuracy"], ledger.get(rerun).submitted_at))
    assert [e["submission"] for e in final] == by_score and [e["rank"] for e in final] == [1, 2, 3]
    assert all(e["score"] == records(home)[e["submission"]]["scores"]["private"]["accuracy"] for e in final)
    run(home, "finalize", "digits")
    assert board(home) == final  # after finalize the board is the final phase's
    assert all("phase" in r for r in records(home).values())
