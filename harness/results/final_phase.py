"""A final phase's entries: each team's selected submissions, queued again on the final phase's test set.

No team pushes again: every re-run is a new ledger submission of the same team and image (by
digest) in the final phase, pointing at the submission it re-runs (``rerun_of``), never charged.
A team that selected nothing is re-run with what its private board would fall back to (its
``final_selections`` best-public submissions, or latest under rule ``last``), as the private board
always did. Only the records of the phases that take submissions choose; asking twice queues
nothing new for a submission already queued in that phase.
"""

from __future__ import annotations

from harness.competition.core import Competition
from harness.competition.phases import Phase, find_phase
from harness.results.standing import Results
from harness.submissions.ledger import Submission
from harness.util.errors import HarnessError


def final_phase(competition: Competition, name: str) -> Phase:
    """Phase ``name``, which must be a final one."""
    phase = find_phase(competition.phases, name)
    assert phase is not None
    if not phase.final:
        raise HarnessError(f"phase {name!r} takes submissions; `harness phase run` evaluates only a final phase's (final: true)")
    return phase


def queue_final_phase(competition: Competition, name: str) -> list[Submission]:
    """Queue a re-run in final phase ``name`` of each team's selection; the new submissions, by team."""
    phase = final_phase(competition, name)
    results = Results(competition)
    finals = {p.name for p in competition.phases if p.final}
    records = [r for r in results.records() if r.get("phase") not in finals]
    ledger = results.ledger
    queued_before = {s.rerun_of for s in ledger.all() if s.competition_phase == phase.name}
    queued = []
    for _team, submission_ids in sorted(results.private_candidates(records).items()):
        for submission_id in submission_ids:
            if submission_id not in queued_before:
                queued.append(ledger.add_rerun(ledger.get(submission_id), phase.name))
    return queued


def final_phases_not_run(competition: Competition) -> list[str]:
    """The final phases with nothing queued yet (`harness finalize` waits for them)."""
    finals = [p.name for p in competition.phases if p.final]
    if not finals:
        return []
    seen = {s.competition_phase for s in Results(competition).ledger.all()}
    return [name for name in finals if name not in seen]
