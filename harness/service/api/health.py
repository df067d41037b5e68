"""``GET /api/v1/health``: up, and whether intake and evaluation are paused."""

from fastapi import APIRouter, Request

from harness.service import control
from harness.service.api.common import context

router = APIRouter(prefix="/api/v1")


@router.get("/health")
def health(request: Request) -> dict:
    return {"status": "ok", **control.status(context(request).paths)}
