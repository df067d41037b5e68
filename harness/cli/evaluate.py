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
    from harness.intake import pin_image
    from harness.ledger import Ledger

    pinned = pin_image(docker_client(), image)
    submission = Ledger(competition.paths.submissions, competition.name).add(team, image, pinned.digest)
    print(f"submitted {image} ({pinned.digest[:19]}) for team {submission.team!r} as {submission.id}", file=sys.stderr)
    return submission


def _submit(args: argparse.Namespace) -> int:
    submission = submit_image(load_competition(args.competition, args.overrides), args.team, args.image)
    print(submission.id)
    return 0


def run_round(competition) -> int:
    from harness.ledger import Ledger
    from harness.round import Round
    from harness.tracking import Tracker
    from runner.ray_pool import RayPhasePool

    settings = competition.settings
    client = docker_client()
    ledger = Ledger(competition.paths.submissions, competition.name)
    if not ledger.pending():
        print(f"no pending submissions in {competition.name}", file=sys.stderr)
        return print_leaderboard(competition, private=False, fmt="table")
    tracker = Tracker(settings.tracking.get("uri"), settings.tracking.experiment, competition.home)
    pool = RayPhasePool(settings.runner.get("address"), settings.runner.get("max_parallel"))
    summary = Round(competition, ledger, tracker, pool, client, infra_retries=settings.runner.infra_retries).run()
    counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(summary.counts().items()))
    print(f"{summary.round_id}: {len(summary.records)} evaluated in {summary.wall_s:.1f} s ({counts or 'none'})", file=sys.stderr)
    if summary.cancelled:
        return 130
    return print_leaderboard(competition, private=False, fmt="table")


def _round(args: argparse.Namespace) -> int:
    return run_round(load_competition(args.competition, args.overrides))
