"""``harness submit`` and ``harness round``: queue submissions, evaluate them."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from harness.cli.common import add_command, add_json, engine, load_competition, print_json
from harness.cli.leaderboard import print_leaderboard


def register(commands) -> None:
    submit = add_command(commands, "submit", _submit, "pin an image to its digest and queue it for the next round")
    submit.add_argument("--team", required=True)
    submit.add_argument("--image", required=True, help="image reference or id on the local engine")
    add_json(submit, "the queued submission")
    add_json(
        add_command(commands, "round", _round, "evaluate every pending submission (Ray tasks), then print the leaderboard"),
        "the round's summary",
    )


def submit_image(competition, team: str, image: str):
    from harness.submissions.intake import pin_image
    from harness.submissions.ledger import Ledger, validate_team

    rules = competition.settings.competition.rules
    validate_team(team)
    phase, per_day = competition.intake()
    pinned = pin_image(engine(competition), image, max_bytes=rules.max_image_bytes)
    submission = Ledger.of(competition).add(team, image, pinned.digest, per_day=per_day, competition_phase=phase)
    print(f"submitted {image} ({pinned.digest[:19]}) for team {submission.team!r} as {submission.id}", file=sys.stderr)
    return submission


def _submit(args: argparse.Namespace) -> int:
    submission = submit_image(load_competition(args.competition, args.overrides), args.team, args.image)
    if args.json:
        print_json(asdict(submission))
    else:
        print(submission.id)
    return 0


def run_round(competition, as_json: bool = False) -> int:
    """Drive a round; print the public leaderboard after it, or with ``as_json`` the round's summary."""
    from harness.rounds.driver import drive_round

    summary = drive_round(competition)
    if summary is None:
        print(f"no pending submissions in {competition.name}", file=sys.stderr)
    if as_json:
        print_json(round_summary(competition, summary))
    if summary is not None and summary.cancelled:
        return 130
    return 0 if as_json else print_leaderboard(competition, private=False, fmt="table")


def round_summary(competition, summary) -> dict:
    """A round's outcome as data (``summary`` None: there was nothing to evaluate)."""
    return {
        "competition": competition.name,
        "round_id": summary.round_id if summary else None,
        "verdicts": dict(summary.verdicts) if summary else {},
        "evaluated": dict(summary.evaluated) if summary else {},
        "retried": summary.retried if summary else 0,
        "cancelled": list(summary.cancelled) if summary else [],
        "left_pending": list(summary.left_pending) if summary else [],
        "wall_s": round(summary.wall_s, 3) if summary else 0.0,
    }


def _round(args: argparse.Namespace) -> int:
    return run_round(load_competition(args.competition, args.overrides), as_json=args.json)
