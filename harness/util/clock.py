"""Clock and ids: UTC timestamps as records and the ledger write them, and stamped ids."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return timestamp(datetime.now(UTC))


def stamped_id(kind: str) -> str:
    """An id for a round, audit or re-infer batch: ``<kind>-<UTC time>-<random>``."""
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
