"""``GET /api/v1/competitions/{c}/kit``: the participant kit as a gzip'd tar, built once per service."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from harness.service.api.common import ALL, SERVED, TEAM, TEAM_AUTH, served
from harness.service.auth import bearer_team
from harness.service.context import ServiceContext
from harness.service.errors import answers
from harness.submissions.teams import Team

router = APIRouter(prefix="/api/v1/competitions/{c}")


KIT = {
    200: {
        "description": "the kit: a gzip'd tar of one folder, `<c>-kit/`",
        "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get("/kit", response_class=FileResponse, responses={**KIT, **answers(*TEAM, *SERVED, *ALL)}, openapi_extra=TEAM_AUTH)
def kit(c: str, request: Request, team: Team = Depends(bearer_team)) -> FileResponse:
    ctx = served(request, c)
    return FileResponse(kit_archive(ctx), media_type="application/gzip", filename=f"{ctx.name}-kit.tar.gz")


def kit_archive(ctx: ServiceContext) -> Path:
    """``service/<c>/kit.tar.gz``, written (atomically) on first ask in this service's life."""
    from harness.competition.kit import build_kit

    archive = ctx.paths.root / "kit.tar.gz"
    with ctx.lock:
        if not ctx.caches.get("kit"):
            ctx.competition.ensure_data()
            with tempfile.TemporaryDirectory(dir=ctx.paths.root) as scratch:
                folder = Path(scratch) / "kit"
                build_kit(ctx.competition, folder)
                partial = Path(scratch) / "kit.tar.gz"
                with tarfile.open(partial, "w:gz") as tar:
                    tar.add(folder, arcname=f"{ctx.name}-kit")
                shutil.move(partial, archive)
            ctx.caches["kit"] = True
    return archive
