"""Leaderboards built from evaluation records: the ranking rules, text renderings and the HTML page."""

from harness.leaderboard.board import (
    Attempt,
    Column,
    Entry,
    build,
    final_candidates,
    history,
    latest_per_submission,
    metric_columns,
    render,
)

__all__ = ["Attempt", "Column", "Entry", "build", "final_candidates", "history", "latest_per_submission", "metric_columns", "render"]
