"""A team's final selection for the private leaderboard."""

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from harness.service import views
from harness.service.api.common import ALL, SERVED, TEAM, TEAM_AUTH, served
from harness.service.auth import bearer_team
from harness.service.errors import ServiceError, answers
from harness.submissions.teams import Team
from harness.util.errors import HarnessError

router = APIRouter(prefix="/api/v1/competitions/{c}")


class SelectBody(BaseModel):
    submissions: list[str] = Field(max_length=100)


@router.get("/selection", responses=answers(*TEAM, *SERVED, *ALL), openapi_extra=TEAM_AUTH)
def selection(c: str, request: Request, team: Team = Depends(bearer_team)) -> dict:
    return views.selection(served(request, c), team)


@router.put(
    "/selection",
    responses=answers(
        *TEAM,
        *SERVED,
        409,
        422,
        *ALL,
        why={422: "the body is malformed, or names a submission that is not the team's, not scored, or too many"},
    ),
    openapi_extra=TEAM_AUTH,
)
def select(c: str, body: SelectBody, request: Request, team: Team = Depends(bearer_team)) -> dict:
    ctx = served(request, c)
    if ctx.ledger.finalized_at() is not None:
        raise ServiceError(409, f"{ctx.name} was finalized at {ctx.ledger.finalized_at()} and takes no more selections")
    limit = ctx.competition.settings.competition.rules.final_selections
    try:
        ctx.ledger.select(team.name, body.submissions, limit=limit, scored=views.scored_submissions(ctx))
    except HarnessError as exc:
        raise ServiceError(422, str(exc)) from None
    return views.selection(ctx, team)
