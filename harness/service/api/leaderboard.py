"""``GET /api/v1/competitions/{c}/leaderboard``: public to anyone; a team's own row names its submission."""

from fastapi import APIRouter, Request

from harness.service import views
from harness.service.api.common import ALL, SERVED, TEAM, served
from harness.service.auth import bearer_team
from harness.service.errors import answers

router = APIRouter(prefix="/api/v1/competitions/{c}")


# no token, or a team's (which must then be valid, and names the team's own row)
@router.get("/leaderboard", responses=answers(*TEAM, *SERVED, *ALL), openapi_extra={"security": [{}, {"team": []}]})
def leaderboard(c: str, request: Request) -> dict:
    ctx = served(request, c)
    team = None
    if request.headers.get("authorization"):  # optional: a token that is sent must be valid
        team = bearer_team(request)
    return views.public_leaderboard(ctx, team)
