"""A team's submissions: submit, list, one, a phase's logs."""

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from harness.service import views
from harness.service.api.common import served
from harness.service.auth import bearer_team
from harness.service.submit import submit
from harness.submissions.teams import Team

router = APIRouter(prefix="/api/v1/competitions/{c}/submissions")


class SubmitBody(BaseModel):
    image: str = Field(max_length=512, description="<registry>/teams/<slug>/<name>, as pushed")
    digest: str = Field(max_length=100, description="sha256:<64 hex>, the manifest digest the push printed")
    message: str = Field("", description="a note for the team (at most 500 characters, one line)")


@router.post("", status_code=201)
def create(c: str, body: SubmitBody, request: Request, team: Team = Depends(bearer_team)) -> dict:
    ctx = served(request, c)
    submission = submit(ctx, team, body.image, body.digest, body.message)
    return views.team_submission(ctx, team, submission.id)


@router.get("")
def listing(c: str, request: Request, team: Team = Depends(bearer_team)) -> dict:
    return views.team_submissions(served(request, c), team)


@router.get("/{submission_id}")
def one(c: str, submission_id: str, request: Request, team: Team = Depends(bearer_team)) -> dict:
    return views.team_submission(served(request, c), team, submission_id)


@router.get("/{submission_id}/logs")
def logs(
    c: str,
    submission_id: str,
    request: Request,
    phase: str = "train",
    since: str | None = Query(None, max_length=64, description="the `next` of an earlier answer: only what came after it"),
    team: Team = Depends(bearer_team),
) -> dict:
    return views.phase_logs(served(request, c), team, submission_id, phase, since)
