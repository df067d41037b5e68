"""``GET /api/v1/competitions/{c}/quota``: what the team's daily quota leaves."""

from fastapi import APIRouter, Depends, Request

from harness.service import views
from harness.service.api.common import ALL, SERVED, TEAM, TEAM_AUTH, served
from harness.service.auth import bearer_team
from harness.service.errors import answers
from harness.submissions.teams import Team

router = APIRouter(prefix="/api/v1/competitions/{c}")


@router.get("/quota", responses=answers(*TEAM, *SERVED, *ALL), openapi_extra=TEAM_AUTH)
def quota(c: str, request: Request, team: Team = Depends(bearer_team)) -> dict:
    return views.quota(served(request, c), team)
