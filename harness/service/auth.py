"""Who calls: a team by its token (``Authorization: Bearer``, HTTP Basic at the registry's token
endpoint, the pages' cookie), every failure counted per client address by the failure limiter.

A token is checked before the limiter is asked (the check is one indexed read and one SHA-256), so
the limiter throttles the guesser only: a valid token is never refused because a stranger failed
from the same address (behind a reverse proxy, every participant's). The client's address is the
connection's, or, from a proxy listed in ``service.trusted_proxies``, the last address the proxies
did not add in ``X-Forwarded-For``.

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
    """The connection's address; behind a trusted proxy, the client's as the proxies report it."""
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.ctx.trusted_proxies
    if peer not in trusted:
        return peer
    hops = [hop.strip() for hop in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if hop.strip()]
    return next((hop for hop in reversed(hops) if hop not in trusted), peer)


def refuse(ctx: ServiceContext, address: str, challenge: str) -> ServiceError:
    """The refusal of a failed authentication: 429 while the address is over its failures (not
    counted again), else 401, counted."""
    wait = ctx.limiter.retry_after(address)
    if wait is not None:
        return ServiceError(429, f"too many failed sign-ins from {address}; try again in {wait} s", {"Retry-After": str(wait)})
    ctx.limiter.failed(address)
    return ServiceError(401, REQUIRED, {"WWW-Authenticate": challenge})


def check_token(ctx: ServiceContext, token: str | None, address: str) -> Team:
    """The team whose token this is, whatever others failed from its address; ``ServiceError``
    429 or 401 (see ``refuse``) for anything else."""
    team = ctx.teams.authenticate(token or "")
    if team is None:
        raise refuse(ctx, address, "Bearer")
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
