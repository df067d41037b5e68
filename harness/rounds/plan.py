"""What a round works out once, before its first evaluation, and hands down to every one of them.

The smoke stage (its data carved and hashed: ``harness.competition.smoke``), the cluster's staging
(the depot, the data every node must hold, the smoke data among it, and the workers' registry
credential: ``harness.rounds.distribution``) and the pool's smoke lane follow from one another;
here they are derived once, so no evaluation, retry or node works them out again.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.competition.core import Competition
from harness.competition.smoke import SmokeStage, smoke_stage
from harness.rounds.distribution import cluster_staging
from harness.runner.staging import Staging


@dataclass(frozen=True)
class RoundPlan:
    smoke: SmokeStage | None  # None: the competition declares no smoke stage
    staging: Staging | None  # None: one node, where everything is local
    smoke_slots: int  # the pool's lane for smoke phases (none without a smoke stage)


def plan_round(competition: Competition) -> RoundPlan:
    """The round's plan, for the Ray cluster the driver is connected to."""
    runner = competition.settings.runner
    smoke = smoke_stage(competition)
    return RoundPlan(
        smoke=smoke,
        staging=cluster_staging(competition, runner.node_cache, smoke),
        smoke_slots=runner.smoke_slots if smoke is not None else 0,
    )
