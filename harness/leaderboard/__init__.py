"""Leaderboards built from evaluation records: the ranking rules, text renderings and the HTML page."""

from harness.leaderboard.board import Attempt, Entry, build, final_candidates, history, latest_per_submission, render

__all__ = ["Attempt", "Entry", "build", "final_candidates", "history", "latest_per_submission", "render"]
