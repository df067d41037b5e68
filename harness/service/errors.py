"""The one error the service answers with: an HTTP status and one line a person can act on."""

from __future__ import annotations

from harness.util.errors import HarnessError


class ServiceError(HarnessError):
    """Answered as ``status`` with ``{"detail": detail}`` (and ``headers``)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def not_found(what: str) -> ServiceError:
    return ServiceError(404, what)
