"""What an organizer controls while the service runs, through files the service reads on each
request: pausing intake (submissions refused, 503) or evaluation (no round starts), and the
workers' pull credential. ``harness service pause|resume|status`` works without the service."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from harness.competition.paths import ServicePaths
from harness.util.errors import HarnessError

PARTS = ("intake", "evaluation")
WORKER = "harness-worker"  # the organizer's workers' username at the token endpoint


def paused(paths: ServicePaths, part: str) -> bool:
    return paths.paused_flag(part).exists()


def set_paused(paths: ServicePaths, parts: list[str], pause: bool) -> None:
    for part in parts:
        if part not in PARTS:
            raise HarnessError(f"no part {part!r} to pause or resume; name intake or evaluation (or neither, for both)")
        flag = paths.paused_flag(part)
        if pause:
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.touch()
        else:
            flag.unlink(missing_ok=True)


def status(paths: ServicePaths) -> dict[str, str]:
    return {
        "intake": "paused" if paused(paths, "intake") else "open",
        "evaluation": "paused" if paused(paths, "evaluation") else "running",
    }


def worker_token(paths: ServicePaths) -> str:
    """The workers' pull credential (``worker-token``, mode 600), made on first use."""
    path: Path = paths.worker_token
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
