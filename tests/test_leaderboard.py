"""Leaderboards from records: ranking, direction, ties, latest record, formats."""

from __future__ import annotations

import csv
import io
import json

from harness import leaderboard
from harness.scoring import get_metric


def record(sub: str, team: str, verdict: str = "SCORED", public: float | None = None, private: float | None = None,
           submitted_at: str = "2026-01-01T00:00:00Z", created_at: str = "2026-01-02T00:00:00Z", metric: str = "accuracy", message: str = ""):
    scores = {}
    if public is not None:
        scores["public"] = {metric: public}
    if private is not None:
        scores["private"] = {metric: private}
    return {
        "submission": {"id": sub, "team": team, "submitted_at": submitted_at},
        "verdict": verdict,
        "scores": scores,
        "created_at": created_at,
        "message": message,
    }


ACC = get_metric("accuracy")


def test_best_submission_per_team_is_ranked():
    entries = leaderboard.build(
        [record("a1", "A", public=0.80), record("a2", "A", public=0.90), record("b1", "B", public=0.85)], ACC
    )
    assert [(e.rank, e.team, e.submission, e.score, e.submissions) for e in entries] == [
        (1, "A", "a2", 0.90, 2),
        (2, "B", "b1", 0.85, 1),
    ]


def test_lower_is_better_metric_ranks_ascending():
    rmse = get_metric("rmse")
    entries = leaderboard.build([record("a", "A", public=2.0, metric="rmse"), record("b", "B", public=1.0, metric="rmse")], rmse)
    assert [e.team for e in entries] == ["B", "A"]


def test_tie_goes_to_the_earlier_submission():
    entries = leaderboard.build(
        [record("late", "L", public=0.9, submitted_at="2026-01-03T00:00:00Z"), record("early", "E", public=0.9, submitted_at="2026-01-01T00:00:00Z")],
        ACC,
    )
    assert [e.team for e in entries] == ["E", "L"]


def test_public_and_private_rankings_differ_on_a_constructed_case():
    records = [record("a", "A", public=0.9, private=0.7), record("b", "B", public=0.8, private=0.95)]
    assert [e.team for e in leaderboard.build(records, ACC)] == ["A", "B"]
    assert [e.team for e in leaderboard.build(records, ACC, private=True)] == ["B", "A"]


def test_unscored_submissions_follow_with_their_verdicts():
    entries = leaderboard.build([record("x", "X", verdict="TIMEOUT", message="train ran past\nmore"), record("a", "A", public=0.5)], ACC)
    assert [(e.rank, e.team, e.verdict, e.message) for e in entries] == [(1, "A", "SCORED", ""), (None, "X", "TIMEOUT", "train ran past")]


def test_latest_record_of_a_submission_wins():
    old = record("a", "A", verdict="INFRA_ERROR", created_at="2026-01-02T00:00:00Z")
    new = record("a", "A", public=0.7, created_at="2026-01-03T00:00:00Z")
    entries = leaderboard.build([new, old], ACC)
    assert [(e.verdict, e.score) for e in entries] == [("SCORED", 0.7)]


def test_formats():
    entries = leaderboard.build([record("a", "A\x1b[31m", public=0.5)], ACC)
    table = leaderboard.render(entries, "table", ACC, "T")
    assert "A?[31m" in table and "\x1b" not in table
    data = json.loads(leaderboard.render(entries, "json", ACC, "T"))
    assert data[0]["team"] == "A\x1b[31m" and data[0]["rank"] == 1
    rows = list(csv.DictReader(io.StringIO(leaderboard.render(entries, "csv", ACC, "T"))))
    assert rows[0]["score"] == "0.5" and rows[0]["rank"] == "1"
