"""The one error the service answers with: an HTTP status and one line a person can act on, and
how the API's document declares it (``ErrorBody``, ``answers``): every status a route can answer,
with this one body, so a client generated from ``/openapi.json`` reads every error it gets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from harness.util.errors import HarnessError


class ServiceError(HarnessError):
    """Answered as ``status`` with ``{"detail": detail}`` (and ``headers``)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def not_found(what: str) -> ServiceError:
    return ServiceError(404, what)


class ErrorBody(BaseModel):
    """Every error's body, a malformed request's (422) included."""

    detail: str = Field(description="one line a person can act on")


# What each status means wherever it is answered; a route adds its own reasons (``answers``).
MEANING = {
    400: "the request names something this service does not serve",
    401: "no valid team token: missing, malformed, wrong, revoked or rotated away (counted by the failure limit)",
    403: "not the caller's to do",
    404: "no such competition here (or no such thing of the caller's)",
    409: "the competition is finalized",
    413: "the request body is over the service's cap (64 KiB by default)",
    422: "the request is malformed: the first problem, as one line",
    429: "too many failed sign-ins from this address (wait `Retry-After` seconds)",
    503: "a part of the service is paused or unavailable; try again later",
}
RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}
CHALLENGE = {"description": "the authentication scheme the service expects", "schema": {"type": "string"}}


def answers(*statuses: int, why: dict[int, str] | None = None, retry_after_always: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each error status it can answer, with ``ErrorBody``, the meaning
    of the status (``why`` overrides it for this route) and its headers (``WWW-Authenticate`` on
    401, ``Retry-After`` on 429: required unless ``retry_after_always`` is false, where some of the
    route's 429s carry none)."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        answer: dict[str, Any] = {"model": ErrorBody, "description": (why or {}).get(status, MEANING[status])}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {**CHALLENGE, "required": True}}
        elif status == 429:
            answer["headers"] = {"Retry-After": {**RETRY_AFTER, "required": retry_after_always}}
        declared[status] = answer
    return declared
