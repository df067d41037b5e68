"""``GET /api/v1/competitions/{c}/leaderboard``: public to anyone; a team's own row names its submission."""

from fastapi import APIRouter, Request

from harness.service import views
from harness.service.api.common import served
from harness.service.auth import bearer_team

router = APIRouter(prefix="/api/v1/competitions/{c}")


@router.get("/leaderboard")
def leaderboard(c: str, request: Request) -> dict:
    ctx = served(request, c)
    team = None
    if request.headers.get("authorization"):  # optional: a token that is sent must be valid
        team = bearer_team(request)
    return views.public_leaderboard(ctx, team)
