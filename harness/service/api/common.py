"""What the routers share: the context and the served competition's check."""

from __future__ import annotations

from fastapi import Request

from harness.service.context import ServiceContext
from harness.service.errors import not_found


def context(request: Request) -> ServiceContext:
    return request.app.state.ctx


def served(request: Request, c: str) -> ServiceContext:
    """The context, when ``c`` is the competition this service runs (else 404)."""
    ctx = context(request)
    if c != ctx.name:
        raise not_found(f"this service runs {ctx.name}, not {c!r}")
    return ctx
