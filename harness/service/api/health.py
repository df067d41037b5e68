"""``GET /api/v1/health``: up, and whether intake and evaluation are paused."""

from fastapi import APIRouter, Request

from harness.service import control
from harness.service.api.common import ALL, context
from harness.service.errors import answers

router = APIRouter(prefix="/api/v1")


@router.get("/health", responses=answers(*ALL))
def health(request: Request) -> dict:
    return {"status": "ok", **control.status(context(request).paths)}
