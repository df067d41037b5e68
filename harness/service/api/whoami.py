"""``GET /api/v1/whoami``: the caller's team, and where it pushes."""

from fastapi import APIRouter, Depends, Request

from harness.service.api.common import ALL, TEAM, TEAM_AUTH, context
from harness.service.auth import bearer_team
from harness.service.errors import answers
from harness.submissions.teams import Team

router = APIRouter(prefix="/api/v1")


@router.get("/whoami", responses=answers(*TEAM, *ALL), openapi_extra=TEAM_AUTH)
def whoami(request: Request, team: Team = Depends(bearer_team)) -> dict:
    ctx = context(request)
    return {"team": team.name, "team_id": team.id, "namespace": team.namespace, "competition": ctx.name, "registry": ctx.registry_public}
