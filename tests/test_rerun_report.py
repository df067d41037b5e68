"""The winners' re-run report's judgement and pages, in process (tests/test_round.py runs a real one)."""

from __future__ import annotations

from harness.proofs.rerun_report import Rerun, RerunReport, render_html, render_text


def runs(*scores: float | None) -> list[dict]:
    return [{"seed": n, "evaluation_id": f"ev-{n}", "verdict": "SCORED", "score": s, "node": "n1"} for n, s in enumerate(scores)]


def report(higher_is_better: bool, *entries: tuple[str, list[dict]]) -> RerunReport:
    made = RerunReport("rerun-1", "digits", "accuracy" if higher_is_better else "rmse", higher_is_better, len(entries), 2)
    made.entries = [Rerun(rank, team, f"sub-{team}", f"ev-{team}", found) for rank, (team, found) in enumerate(entries, 1)]
    made.judge()
    return made


def test_a_rank_could_change_only_where_the_lower_ones_best_beats_the_upper_ones_worst():
    held = report(True, ("a", runs(0.9, 0.9, 0.9)), ("b", runs(0.8, 0.85, 0.9)), ("c", runs(0.5, 0.6, 0.7)))
    assert [e.spread["spread"] for e in held.entries] == [0.0, 0.09999999999999998, 0.19999999999999996]
    assert [p["could_swap"] for p in held.pairs] == [False, False] and not held.rank_would_change  # a tie keeps the tie-break
    swapped = report(True, ("a", runs(0.9, 0.8, 0.85)), ("b", runs(0.84, 0.86, 0.8)))
    assert swapped.pairs == [{"upper": "sub-a", "lower": "sub-b", "ranks": [1, 2], "could_swap": True}] and swapped.rank_would_change
    lower_is_better = report(False, ("a", runs(1.0, 1.2)), ("b", runs(1.5, 1.1)))
    assert lower_is_better.rank_would_change  # b's best (1.1) is under a's worst (1.2)
    unscored = report(True, ("a", runs(0.9, None)), ("b", runs(None)))
    assert unscored.entries[1].spread == {} and unscored.rank_would_change  # nothing shows the order holds


def test_the_report_reads_as_text_and_as_an_escaped_page():
    made = report(True, ("<b>a</b>", runs(0.9, 0.9)), ("b", runs(0.8, 0.7))).to_dict()
    text = render_text(made)
    assert "#1 sub-<b>a</b> over #2 sub-b: holds" in text and text.rstrip().endswith("no rank would change")
    page = render_html(made)
    assert "&lt;b&gt;a&lt;/b&gt;" in page and "<b>a</b>" not in page and "0.90000, 0.90000" in page
