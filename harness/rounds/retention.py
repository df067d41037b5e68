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
from harness.results import Results
from harness.submissions.ledger import EVALUATED, UNFINISHED, Ledger, Submission


@dataclass
class Retention:
    """Why each kept submission is kept (``kept[id]``), and every submission of the ledger."""

    submissions: list[Submission]
    kept: dict[str, str] = field(default_factory=dict)

    def keeps(self, submission_id: str) -> bool:
        return submission_id in self.kept


def retention(competition: Competition, ledger: Ledger, records: list[dict[str, Any]]) -> Retention:
    """The policy applied to the ledger and the standing records (each submission's latest counts)."""
    results = Results(competition, ledger)
    keep_top = results.rules.keep_top
    submissions = ledger.all()
    policy = Retention(submissions)
    for submission in submissions:
        if submission.state in UNFINISHED:
            policy.kept[submission.id] = str(submission.state)
    evaluated = {s.id for s in submissions if s.state == EVALUATED}
    records = [record for record in records if record["submission"]["id"] in evaluated]
    for team, best in results.private_candidates(records, selections={}, rule="best", fallback=keep_top).items():
        for submission_id in best:
            policy.kept.setdefault(submission_id, f"among team {team}'s {keep_top} best")
    selections = ledger.selections()
    unselected = results.private_candidates(records, selections={})  # the private board of a team that selected none
    for team, fallback in unselected.items():
        if not selections.get(team):
            for submission_id in fallback:
                policy.kept.setdefault(submission_id, "on the private board (the team selected none)")
    for chosen in selections.values():  # a selection stands even when its record is gone
        for submission_id in chosen:
            policy.kept[submission_id] = "selected for the private board"
    return policy
