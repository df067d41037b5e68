"""``harness submit`` and ``harness round``: queue submissions, evaluate them."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, docker_client, load_competition
from harness.cli.leaderboard import print_leaderboard


def register(commands) -> None:
    submit = add_command(commands, "submit", _submit, "pin an image to its digest and queue it for the next round")
    submit.add_argument("--team", required=True)
    submit.add_argument("--image", required=True, help="image reference or id on the local engine")
    add_command(commands, "round", _round, "evaluate every pending submission (Ray tasks), then print the leaderboard")


def submit_image(competition, team: str, image: str):
    from harness.submissions.intake import pin_image
    from harness.submissions.ledger import Ledger, validate_team

    rules = competition.settings.competition.rules
    validate_team(team)
    pinned = pin_image(docker_client(), image, max_bytes=rules.max_image_bytes)
    submission = Ledger.of(competition).add(team, image, pinned.digest, per_day=rules.per_day)
    print(f"submitted {image} ({pinned.digest[:19]}) for team {submission.team!r} as {submission.id}", file=sys.stderr)
    return submission


def _submit(args: argparse.Namespace) -> int:
    submission = submit_image(load_competition(args.competition, args.overrides), args.team, args.image)
    print(submission.id)
    return 0


def run_round(competition) -> int:
    from harness.rounds.driver import drive_round

    summary = drive_round(competition, docker_client())
    if summary is None:
        print(f"no pending submissions in {competition.name}", file=sys.stderr)
    elif summary.cancelled:
        return 130
    return print_leaderboard(competition, private=False, fmt="table")


def _round(args: argparse.Namespace) -> int:
    return run_round(load_competition(args.competition, args.overrides))
