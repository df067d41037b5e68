"""The daily quota: at most ``per_day`` charged submissions per team in any 24 hours.

Which submissions are charged is the ledger's call (:attr:`harness.ledger.Submission.charged`);
this module only counts them and says when the next one is allowed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from harness.util.errors import HarnessError

WINDOW = timedelta(hours=24)


class QuotaExceeded(HarnessError):
    """The team has used its quota; the message says when the next submission is allowed."""


def next_allowed(charged: list[datetime], per_day: int, now: datetime) -> datetime | None:
    """None when one more submission fits in the window ending ``now``, else when it will."""
    recent = sorted(t for t in charged if t > now - WINDOW)
    if len(recent) < per_day:
        return None
    return recent[len(recent) - per_day] + WINDOW


def check_quota(team: str, charged: list[datetime], per_day: int, now: datetime) -> None:
    allowed_at = next_allowed(charged, per_day, now)
    if allowed_at is None:
        return
    raise QuotaExceeded(
        f"team {team!r} has used its quota of {per_day} submission(s) in 24 hours; the next one is allowed at "
        f"{allowed_at.strftime('%Y-%m-%d %H:%M:%S')} UTC (in {_duration(allowed_at - now)}). "
        "Submissions that failed on the organizer's side (INFRA_ERROR) do not count"
    )


def _duration(delta: timedelta) -> str:
    minutes = max(1, -(-int(delta.total_seconds()) // 60))  # rounded up: never "in 0 min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
