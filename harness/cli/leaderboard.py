"""``harness leaderboard``."""

from __future__ import annotations

import argparse

from harness.cli.common import add_command, load_competition


def register(commands) -> None:
    board = add_command(commands, "leaderboard", _leaderboard, "print the leaderboard built from the evaluation records")
    board.add_argument("--private", action="store_true", help="rank on the private part of the test set")
    board.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _leaderboard(args: argparse.Namespace) -> int:
    return print_leaderboard(load_competition(args.competition, args.overrides), private=args.private, fmt=args.format)


def print_leaderboard(competition, *, private: bool, fmt: str) -> int:
    from harness import leaderboard
    from harness.record import load_records
    from harness.scoring import get_metric

    metric = get_metric(competition.settings.competition.primary_metric)
    entries = leaderboard.build(load_records(competition.paths.records), metric, private=private)
    title = f"{competition.settings.competition.title}: {'private' if private else 'public'} leaderboard"
    print(leaderboard.render(entries, fmt, metric, title))
    return 0
