"""What the routers share: the context, the served competition's check, and what every route
declares in the API's document (``answers`` of harness.service.errors): 413 on every route (the
body cap is a middleware in front of them all), 401 and 429 with the team's token, 404 under
``/competitions/{c}``."""

from __future__ import annotations

from fastapi import Request

from harness.service.context import ServiceContext
from harness.service.errors import not_found

ALL = (413,)  # every route: harness.service.bodylimit answers before any route
TEAM = (401, 429)  # harness.service.auth.bearer_team: no valid token, or too many failures from the address
SERVED = (404,)  # ``served``: {c} is not this service's competition
TEAM_AUTH = {"security": [{"team": []}]}  # openapi_extra of a route that needs the team's token


def context(request: Request) -> ServiceContext:
    return request.app.state.ctx


def served(request: Request, c: str) -> ServiceContext:
    """The context, when ``c`` is the competition this service runs (else 404)."""
    ctx = context(request)
    if c != ctx.name:
        raise not_found(f"this service runs {ctx.name}, not {c!r}")
    return ctx
