"""``GET /api/v1/registry/token``: the registry's token issuer (the Docker token-authentication
protocol). A team (its token as the Basic password) gets push,pull under its namespace only, and
no push once its images take its registry budget (``competition.intake.team_registry_size``); the
organizer's workers (``harness-worker``, the worker token) get pull everywhere."""

import hmac

from fastapi import APIRouter, Query, Request

from harness.registry import Access, RegistryUnavailable, parse_scopes, token_answer
from harness.service.api.common import ALL, TEAM, context
from harness.service.auth import basic_credentials, check_token, client_address, refuse
from harness.service.context import SERVICE_NAME
from harness.service.control import WORKER
from harness.service.errors import ServiceError, answers

router = APIRouter(prefix="/api/v1/registry")


@router.get(
    "/token",
    responses=answers(
        400,
        503,
        *TEAM,
        *ALL,
        why={
            400: "`service` is not the registry this issuer signs for",
            401: "no valid credentials (HTTP Basic: a team's token, or the workers')",
            503: "a team asks to push and the registry cannot be read to weigh its storage budget; try again later",
        },
    ),
    openapi_extra={"security": [{"registry": []}]},
)
def token(request: Request, service: str = SERVICE_NAME, scope: list[str] = Query(default=[])) -> dict:
    ctx, address = context(request), client_address(request)
    if service != SERVICE_NAME:
        raise ServiceError(400, f"this issuer signs tokens for {SERVICE_NAME!r}, not {service!r}")
    username, password = basic_credentials(request) or ("", "")
    if username == WORKER:
        if not hmac.compare_digest(password.encode(), ctx.worker_token.encode()):
            raise refuse(ctx, address, 'Basic realm="harness"')
        return token_answer(ctx.key, service=service, scopes=scope, namespace=None, subject=WORKER)
    team = check_token(ctx, password, address)
    requested = parse_scopes(scope)
    if _over_budget(ctx, team, requested):  # pull still works; the push is refused by the registry
        scope = [f"{a.type}:{a.name}:{','.join(x for x in a.actions if x != 'push')}" for a in requested]
    return token_answer(ctx.key, service=service, scopes=scope, namespace=team.namespace, subject=team.id)


def _over_budget(ctx, team, requested: list[Access]) -> bool:
    """Whether the team asks to push while its images take its whole registry budget."""
    budget = ctx.competition.settings.competition.rules.team_registry_bytes
    if budget is None or not any("push" in access.actions for access in requested):
        return False
    try:
        return ctx.registry_usage.stored_bytes(team.namespace) >= budget
    except RegistryUnavailable as exc:
        raise ServiceError(503, f"the registry cannot be read now ({exc}); try again later") from None
