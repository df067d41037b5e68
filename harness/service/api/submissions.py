"""A team's submissions: submit, list, one, cancel a queued one, a phase's logs."""

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from harness.client.wire import SubmissionList, SubmissionView
from harness.service import views
from harness.service.api.common import ALL, SERVED, TEAM, TEAM_AUTH, served
from harness.service.auth import bearer_team
from harness.service.errors import ServiceError, answers, not_found
from harness.service.submit import submit
from harness.submissions.ledger import CannotCancel, NoSuchSubmission
from harness.submissions.teams import Team

router = APIRouter(prefix="/api/v1/competitions/{c}/submissions")


class SubmitBody(BaseModel):
    image: str = Field(max_length=512, description="<registry>/teams/<slug>/<name>, as pushed")
    digest: str = Field(max_length=100, description="sha256:<64 hex>, the manifest digest the push printed")
    message: str = Field("", description="a note for the team (at most 500 characters, one line)")


SUBMIT = answers(
    *TEAM,
    403,
    *SERVED,
    409,
    413,
    422,
    503,
    why={
        403: "the image is not under the team's namespace in this registry",
        404: "no such competition here, or the image's digest is not in the registry (push it first)",
        413: "the request body is over the service's cap, or the image over the competition's size cap",
        422: "the body is malformed, the digest is not sha256:<64 hex>, the message is too long or has control characters, or intake refused the image",
        429: "too many failed sign-ins from this address (`Retry-After`), or the team's daily quota is used (the message says when)",
        503: "intake is paused, or the registry or the Docker engine cannot be reached; try again later",
    },
    retry_after_always=False,
)
ONE = {404: "no such competition here, or no such submission of the team's (another team's is the same)"}


@router.post("", status_code=201, response_model=SubmissionView, responses=SUBMIT, openapi_extra=TEAM_AUTH)
def create(c: str, body: SubmitBody, request: Request, team: Team = Depends(bearer_team)) -> SubmissionView:
    ctx = served(request, c)
    submission = submit(ctx, team, body.image, body.digest, body.message)
    return views.team_submission(ctx, team, submission.id)


@router.get("", response_model=SubmissionList, responses=answers(*TEAM, *SERVED, *ALL), openapi_extra=TEAM_AUTH)
def listing(c: str, request: Request, team: Team = Depends(bearer_team)) -> SubmissionList:
    return views.team_submissions(served(request, c), team)


@router.get("/{submission_id}", response_model=SubmissionView, responses=answers(*TEAM, *SERVED, *ALL, why=ONE), openapi_extra=TEAM_AUTH)
def one(c: str, submission_id: str, request: Request, team: Team = Depends(bearer_team)) -> SubmissionView:
    return views.team_submission(served(request, c), team, submission_id)


@router.post(
    "/{submission_id}/cancel",
    response_model=SubmissionView,
    responses=answers(
        *TEAM,
        *SERVED,
        409,
        *ALL,
        why={
            404: ONE[404],
            409: "it is not queued any more: a round took it (running), it has a verdict, it was withdrawn, disqualified or cancelled, or the competition is finalized",
        },
    ),
    openapi_extra=TEAM_AUTH,
)
def cancel(c: str, submission_id: str, request: Request, team: Team = Depends(bearer_team)) -> SubmissionView:
    """Withdraw the team's own queued submission: never evaluated, not charged (its quota comes back)."""
    ctx = served(request, c)
    try:
        ctx.ledger.cancel(team.name, submission_id)
    except NoSuchSubmission as exc:
        raise not_found(str(exc)) from None
    except CannotCancel as exc:
        raise ServiceError(409, str(exc)) from None
    return views.team_submission(ctx, team, submission_id)


@router.get(
    "/{submission_id}/logs",
    responses=answers(
        *TEAM,
        *SERVED,
        422,
        *ALL,
        why={404: ONE[404] + ", or the phase has not run (yet)", 422: "no such phase, or `since` is not a cursor this service gave"},
    ),
    openapi_extra=TEAM_AUTH,
)
def logs(
    c: str,
    submission_id: str,
    request: Request,
    phase: str = "train",
    since: str | None = Query(None, max_length=64, description="the `next` of an earlier answer: only what came after it"),
    team: Team = Depends(bearer_team),
) -> dict:
    return views.phase_logs(served(request, c), team, submission_id, phase, since)
