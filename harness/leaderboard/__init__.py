"""Leaderboards built from evaluation records: the ranking rules, text renderings and the HTML page."""

from harness.leaderboard.board import (
    Attempt,
    Entry,
    build,
    final_candidates,
    history,
    latest_per_submission,
    render,
)
from harness.leaderboard.columns import Column, metric_columns, service_columns, table_columns

__all__ = [
    "Attempt",
    "Column",
    "Entry",
    "build",
    "final_candidates",
    "history",
    "latest_per_submission",
    "metric_columns",
    "render",
    "service_columns",
    "table_columns",
]
