"""The retention policy: which submissions a competition must keep whole, for audits and finals.

Kept: every pending or running submission (a round needs its image); each team's final selection,
or, when it selected none, the submissions its private board falls back to
(``leaderboard.final_selections`` best-public, or latest under rule ``last``); and its
``retention.top_k`` best-public scored submissions. A kept submission keeps its run directories,
its image on this engine, its depot image archive and its model in the artifact store. Everything
else (withdrawn, disqualified, failed, or scored but outranked) is reclaimable, except its record,
its ledger row, its logs and predictions: ``harness gc`` never frees those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.competition.core import Competition
from harness.limits import Verdict
from harness.scoring.metrics import get_metric
from harness.submissions.ledger import EVALUATED, UNFINISHED, Ledger, Submission


@dataclass
class Retention:
    """Why each kept submission is kept (``kept[id]``), and every submission of the ledger."""

    submissions: list[Submission]
    kept: dict[str, str] = field(default_factory=dict)

    def keeps(self, submission_id: str) -> bool:
        return submission_id in self.kept


def retention(competition: Competition, ledger: Ledger, records: list[dict[str, Any]]) -> Retention:
    """The policy applied to the ledger and the latest record of each submission."""
    settings = competition.settings.competition
    rules, metric = settings.rules, get_metric(settings.primary_metric)
    submissions = ledger.all()
    policy = Retention(submissions)
    latest = {}
    for record in records:  # the last record of each submission stands for it
        latest[record["submission"]["id"]] = record
    for submission in submissions:
        if submission.state in UNFINISHED:
            policy.kept[submission.id] = submission.state
    by_team: dict[str, list[tuple[Submission, float]]] = {}
    for submission in submissions:
        record = latest.get(submission.id)
        if submission.state in UNFINISHED or record is None or record["verdict"] != Verdict.SCORED:
            continue
        score = ((record.get("scores") or {}).get("public") or {}).get(metric.name)
        if submission.state == EVALUATED and score is not None:
            by_team.setdefault(submission.team, []).append((submission, score))
    selections = ledger.selections()
    for team, scored in by_team.items():
        best = sorted(scored, key=lambda item: (-item[1] if metric.higher_is_better else item[1], item[0].submitted_at, item[0].id))
        for submission, _ in best[: rules.keep_top]:
            policy.kept.setdefault(submission.id, f"among team {team}'s {rules.keep_top} best")
        if selections.get(team):
            continue  # its selection is its private board (below)
        fallback = sorted(scored, key=lambda item: (item[0].submitted_at, item[0].id), reverse=True) if rules.rule == "last" else best
        for submission, _ in fallback[: rules.final_selections]:
            policy.kept.setdefault(submission.id, "on the private board (the team selected none)")
    for chosen in selections.values():  # a selection stands even when its record is gone
        for submission_id in chosen:
            policy.kept[submission_id] = "selected for the private board"
    return policy
