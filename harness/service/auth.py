"""Who calls: a team by its token (``Authorization: Bearer``, HTTP Basic at the registry's token
endpoint, the pages' cookie), every failure counted per client address by the failure limiter.

Every refusal says the same (``a valid team token is required``): a caller learns nothing about
which part was wrong."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from harness.service.context import ServiceContext
from harness.service.errors import ServiceError
from harness.submissions.teams import Team

REQUIRED = "a valid team token is required"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_token(ctx: ServiceContext, token: str | None, address: str) -> Team:
    """The team whose token this is; ``ServiceError`` 429 while the address is over its failures,
    401 (counted) for anything else."""
    wait = ctx.limiter.retry_after(address)
    if wait is not None:
        raise ServiceError(429, f"too many failed sign-ins from {address}; try again in {wait} s", {"Retry-After": str(wait)})
    team = ctx.teams.authenticate(token or "")
    if team is None:
        ctx.limiter.failed(address)
        raise ServiceError(401, REQUIRED, {"WWW-Authenticate": "Bearer"})
    return team


def bearer_team(request: Request) -> Team:
    """The API's dependency: the team of ``Authorization: Bearer <token>``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return check_token(request.app.state.ctx, token.strip() if scheme.lower() == "bearer" else None, client_address(request))


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(username, password)`` of ``Authorization: Basic``, or None."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None
