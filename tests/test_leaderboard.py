"""Leaderboards from records: ranking, direction, ties, latest record, formats."""

from __future__ import annotations

import csv
import io
import json

from harness import leaderboard
from harness.scoring import get_metric


def record(
    sub: str,
    team: str,
    verdict: str = "SCORED",
    public: float | None = None,
    private: float | None = None,
    submitted_at: str = "2026-01-01T00:00:00Z",
    created_at: str = "2026-01-02T00:00:00Z",
    metric: str = "accuracy",
    message: str = "",
    others: dict[str, tuple[float, float]] | None = None,  # secondary metric: (public, private)
):
    scores = {}
    if public is not None:
        scores["public"] = {metric: public, **{name: pair[0] for name, pair in (others or {}).items()}}
    if private is not None:
        scores["private"] = {metric: private, **{name: pair[1] for name, pair in (others or {}).items()}}
    return {
        "submission": {"id": sub, "team": team, "submitted_at": submitted_at},
        "verdict": verdict,
        "scores": scores,
        "created_at": created_at,
        "message": message,
    }


ACC = get_metric("accuracy")


def test_best_submission_per_team_is_ranked():
    entries = leaderboard.build([record("a1", "A", public=0.80), record("a2", "A", public=0.90), record("b1", "B", public=0.85)], ACC)
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
        [
            record("late", "L", public=0.9, submitted_at="2026-01-03T00:00:00Z"),
            record("early", "E", public=0.9, submitted_at="2026-01-01T00:00:00Z"),
        ],
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


def test_rule_last_ranks_the_latest_scored_submission():
    records = [
        record("a1", "A", public=0.95, submitted_at="2026-01-01T00:00:00Z"),
        record("a2", "A", public=0.70, submitted_at="2026-01-02T00:00:00Z"),
        record("a3", "A", verdict="TIMEOUT", submitted_at="2026-01-03T00:00:00Z"),
        record("b1", "B", public=0.80),
    ]
    assert [(e.team, e.submission) for e in leaderboard.build(records, ACC)] == [("A", "a1"), ("B", "b1")]
    assert [(e.team, e.submission) for e in leaderboard.build(records, ACC, rule="last")] == [("B", "b1"), ("A", "a2")]


def test_a_team_tie_goes_to_its_earlier_submission():
    records = [
        record("late", "A", public=0.9, submitted_at="2026-01-02T00:00:00Z"),
        record("early", "A", public=0.9, submitted_at="2026-01-01T00:00:00Z"),
    ]
    assert [e.submission for e in leaderboard.build(records, ACC)] == ["early"]


# A: its best-public submission overfits the public part; it selects the other one.
# B: selects nothing, so its K=1 best-public submission counts, not its better-private one.
FINALS = [
    record("a-overfit", "A", public=0.99, private=0.70, submitted_at="2026-01-01T00:00:00Z"),
    record("a-robust", "A", public=0.90, private=0.93, submitted_at="2026-01-02T00:00:00Z"),
    record("b-best-public", "B", public=0.95, private=0.91, submitted_at="2026-01-01T00:00:00Z"),
    record("b-hidden-gem", "B", public=0.85, private=0.97, submitted_at="2026-01-02T00:00:00Z"),
]


def test_final_selection_with_and_without_the_fallback():
    public = leaderboard.build(FINALS, ACC)
    assert [(e.rank, e.team, e.submission, e.score) for e in public] == [(1, "A", "a-overfit", 0.99), (2, "B", "b-best-public", 0.95)]
    final = leaderboard.build(FINALS, ACC, private=True, selections={"A": ["a-robust"]}, fallback=1)
    assert [(e.rank, e.team, e.submission, e.score) for e in final] == [(1, "A", "a-robust", 0.93), (2, "B", "b-best-public", 0.91)]
    # without any selection, each team's best-public submission stands: A falls behind B
    fallback = leaderboard.build(FINALS, ACC, private=True, fallback=1)
    assert [(e.team, e.submission, e.score) for e in fallback] == [("B", "b-best-public", 0.91), ("A", "a-overfit", 0.70)]
    # a larger fallback takes the best private of the K best-public
    assert [(e.team, e.submission) for e in leaderboard.build(FINALS, ACC, private=True, fallback=2)] == [
        ("B", "b-hidden-gem"),
        ("A", "a-robust"),
    ]
    # under rule "last" the fallback is the latest submissions
    assert [(e.team, e.submission) for e in leaderboard.build(FINALS, ACC, private=True, rule="last", fallback=1)] == [
        ("B", "b-hidden-gem"),
        ("A", "a-robust"),
    ]


def test_verdict_counts_and_history():
    records = [
        record("a1", "A", public=0.8, private=0.7, submitted_at="2026-01-01T00:00:00Z"),
        record("a2", "A", verdict="TIMEOUT", submitted_at="2026-01-02T00:00:00Z"),
        record("a3", "A", verdict="TIMEOUT", submitted_at="2026-01-03T00:00:00Z"),
    ]
    (entry,) = leaderboard.build(records, ACC)
    assert entry.verdicts == {"SCORED": 1, "TIMEOUT": 2} and entry.submissions == 3
    rows = list(csv.DictReader(io.StringIO(leaderboard.render([entry], "csv", ACC, "T"))))
    assert rows[0]["verdicts"] == "SCORED=1;TIMEOUT=2"
    hidden = leaderboard.history(records, ACC, {"A": ["a1"]}, reveal_private=False)
    assert [(a.submission, a.verdict, a.public, a.private, a.selected) for a in hidden] == [
        ("a1", "SCORED", 0.8, None, True),
        ("a2", "TIMEOUT", None, None, False),
        ("a3", "TIMEOUT", None, None, False),
    ]
    assert leaderboard.history(records, ACC)[0].private == 0.7
    table = leaderboard.render(hidden, "table", ACC, "history")
    assert "public accuracy" in table and "0.80000" in table and "0.70000" not in table


def _write_records(home, records) -> list[str]:
    """Queue a submission per record in the ledger (as evaluated, its evaluation listed), then write
    the record (a valid one) with its id."""
    from test_record import make_record

    from harness.submissions.ledger import EVALUATED, Ledger

    ledger, ids = Ledger(home, "digits"), []
    directory = home / "competitions" / "digits" / "records"
    directory.mkdir(parents=True, exist_ok=True)
    for r in records:
        submission = ledger.add(r["submission"]["team"], "img", "sha256:" + "0" * 64)
        submission.state, submission.evaluations = EVALUATED, [f"ev-{submission.id}"]
        ledger.save(submission)
        data = make_record(
            f"ev-{submission.id}",
            submission.id,
            r["submission"]["team"],
            r["verdict"],
            r["scores"],
            submitted_at=r["submission"]["submitted_at"],
            created_at=r["created_at"],
            message=r["message"],
        )
        (directory / f"ev-{submission.id}.json").write_text(json.dumps(data))
        ids.append(submission.id)
    return ids


def test_select_and_finalize_switch_the_board_to_private(home, capsys):
    from harness.cli import main

    ids = dict(zip(["a-overfit", "a-robust", "b-best-public", "b-hidden-gem"], _write_records(home, FINALS)))
    assert main(["select", "digits", "--team", "A", ids["a-robust"], "competition.leaderboard.final_selections=1"]) == 0
    assert main(["select", "digits", "--team", "A", ids["a-robust"], ids["a-overfit"], "competition.leaderboard.final_selections=1"]) == 2
    assert "a team may select at most 1" in capsys.readouterr().err
    assert main(["select", "digits", "--team", "B", ids["a-robust"]]) == 2
    assert f"team 'B' has no submission '{ids['a-robust']}'" in capsys.readouterr().err

    assert main(["leaderboard", "digits", "--format", "json"]) == 0
    assert [(e["team"], e["submission"]) for e in json.loads(capsys.readouterr().out)] == [
        ("A", ids["a-overfit"]),
        ("B", ids["b-best-public"]),
    ]
    assert main(["finalize", "digits", "competition.leaderboard.final_selections=1"]) == 0
    out = capsys.readouterr().out
    assert "private leaderboard (final, " in out
    assert main(["leaderboard", "digits", "competition.leaderboard.final_selections=1", "--format", "json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert [(e["team"], e["submission"], e["score"]) for e in final] == [("A", ids["a-robust"], 0.93), ("B", ids["b-best-public"], 0.91)]
    assert main(["leaderboard", "digits", "--public", "--team", "B", "--format", "csv"]) == 0
    history = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(h["submission"], h["private"]) for h in history] == [(ids["b-best-public"], ""), (ids["b-hidden-gem"], "")]
    assert main(["select", "digits", "--team", "B", ids["b-hidden-gem"]]) == 2
    assert "was finalized at" in capsys.readouterr().err


def test_the_private_boards_candidates_are_what_it_ranks_among():
    """``final_candidates`` (what gc's retention keeps for a private board) is the board's own choice:
    the selection, else the fallback best-public (rule best) or latest (rule last), never an unscored one."""
    records = [
        record("a1", "A", public=0.70, private=0.99, submitted_at="2026-01-01T00:00:00Z"),
        record("a2", "A", public=0.90, private=0.50, submitted_at="2026-01-02T00:00:00Z"),
        record("a3", "A", public=0.80, private=0.60, submitted_at="2026-01-03T00:00:00Z"),
        record("a4", "A", verdict="TIMEOUT", submitted_at="2026-01-04T00:00:00Z"),
        record("b1", "B", public=0.60, private=0.70),
        record("c1", "C", verdict="RUNTIME_ERROR"),
    ]
    best = leaderboard.final_candidates(records, ACC, rule="best", fallback=2)
    assert best == {"A": ["a2", "a3"], "B": ["b1"]}
    assert leaderboard.final_candidates(records, ACC, rule="last", fallback=2) == {"A": ["a3", "a2"], "B": ["b1"]}
    assert leaderboard.final_candidates(records, ACC, selections={"A": ["a1"]}, fallback=2) == {"A": ["a1"], "B": ["b1"]}
    for rule, selections in (("best", {}), ("last", {}), ("best", {"A": ["a1"]})):
        chosen = leaderboard.final_candidates(records, ACC, rule=rule, selections=selections, fallback=2)
        board = leaderboard.build(records, ACC, private=True, rule=rule, selections=selections, fallback=2)
        assert all(e.submission in chosen[e.team] for e in board if e.rank is not None)


# --- secondary metrics: columns of every board ---------------------------------------------------

OTHERS = [get_metric("macro_f1"), get_metric("balanced_accuracy")]
WITH_OTHERS = [
    record("a1", "A", public=0.90, private=0.80, others={"macro_f1": (0.85, 0.75), "balanced_accuracy": (0.8, 0.7)}),
    # B's best macro_f1 is not on the submission that ranks B: its ranking one's scores are shown
    record("b1", "B", public=0.70, private=0.60, others={"macro_f1": (0.65, 0.55), "balanced_accuracy": (0.6, 0.5)}),
    record("b2", "B", public=0.50, private=0.40, others={"macro_f1": (0.99, 0.99), "balanced_accuracy": (0.99, 0.99)}),
    record("c1", "C", verdict="TIMEOUT", message="train ran past its limit"),
]


def test_secondary_scores_come_from_the_submission_that_ranks_on_the_boards_part():
    public = leaderboard.build(WITH_OTHERS, ACC, others=OTHERS)
    assert [(e.team, e.submission, e.others) for e in public] == [
        ("A", "a1", {"macro_f1": 0.85, "balanced_accuracy": 0.8}),
        ("B", "b1", {"macro_f1": 0.65, "balanced_accuracy": 0.6}),
        ("C", "c1", {"macro_f1": None, "balanced_accuracy": None}),
    ]
    private = leaderboard.build(WITH_OTHERS, ACC, private=True, others=OTHERS)
    assert [e.others["macro_f1"] for e in private] == [0.75, 0.55, None]
    hidden = leaderboard.history(WITH_OTHERS, ACC, reveal_private=False, others=OTHERS)
    assert hidden[0].public_others == {"macro_f1": 0.85, "balanced_accuracy": 0.8}
    assert hidden[0].private_others == {"macro_f1": None, "balanced_accuracy": None}  # blank, as the private score is


def test_secondary_metrics_are_columns_of_the_table_json_csv_and_html_boards(home, capsys):
    from test_leaderboard_html import parse

    from harness.cli import main

    ids = dict(zip(["a1", "b1", "b2", "c1"], _write_records(home, WITH_OTHERS)))
    override = "competition.metrics.others=[macro_f1,balanced_accuracy]"

    def board(*args: str) -> str:
        assert main(["leaderboard", "digits", override, *args]) == 0
        return capsys.readouterr().out

    table = board().splitlines()
    header = table[1].split()
    assert header[:5] == ["rank", "team", "accuracy", "macro_f1", "balanced_accuracy"]
    assert table[3].split()[:5] == ["1", "A", "0.90000", "0.85000", "0.80000"]
    assert table[4].split()[:5] == ["2", "B", "0.70000", "0.65000", "0.60000"] and "SCORED" in table[4]
    assert table[1].index("balanced_accuracy") < table[1].index("interval") < table[1].index("train s")  # then the evidence
    assert table[5].split()[:3] == ["-", "C", "TIMEOUT"]  # unranked: its score and secondary cells are blank

    data = json.loads(board("--json"))
    assert [(row["team"], row["submission"], row["others"]) for row in data] == [
        ("A", ids["a1"], {"macro_f1": 0.85, "balanced_accuracy": 0.8}),
        ("B", ids["b1"], {"macro_f1": 0.65, "balanced_accuracy": 0.6}),
        ("C", ids["c1"], {"macro_f1": None, "balanced_accuracy": None}),
    ]
    private = json.loads(board("--json", "--private", "--organizer"))
    assert [row["others"]["balanced_accuracy"] for row in private] == [0.7, 0.5, None]

    rows = list(csv.DictReader(io.StringIO(board("--format", "csv"))))
    names = list(rows[0])  # the entries' fields, a column per secondary metric, then a column per resource
    assert names[names.index("macro_f1") :][:3] == ["macro_f1", "balanced_accuracy", "train_wall_s"] and "others" not in rows[0]
    assert [(r["team"], r["score"], r["macro_f1"], r["balanced_accuracy"]) for r in rows] == [
        ("A", "0.9", "0.85", "0.8"),
        ("B", "0.7", "0.65", "0.6"),
        ("C", "", "", ""),
    ]

    page = parse(board("--format", "html"))
    at = page.headers.index("accuracy")
    assert page.headers[at : at + 3] == ["accuracy", "macro_f1", "balanced_accuracy"]
    cells = [row for row in page.rows if row]
    assert [row[at : at + 3] for row in cells[:2]] == [["0.90000", "0.85000", "0.80000"], ["0.70000", "0.65000", "0.60000"]]
    assert cells[2][1] == "C" and cells[2][at + 1 : at + 3] == ["", ""]
