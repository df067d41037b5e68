"""``harness rescore``: every score again from the stored predictions, with the current metrics."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, add_json, load_competition, open_sinks, print_json
from harness.cli.leaderboard import print_leaderboard


def register(commands) -> None:
    rescore = add_command(
        commands,
        "rescore",
        _rescore,
        "score every record again from its stored predictions with the current metric configuration (no container runs)",
    )
    rescore.add_argument("--force", action="store_true", help="rescore after finalize too (listed in each changed record's history)")
    add_json(rescore, "what changed (instead of the leaderboard)")


def _rescore(args: argparse.Namespace) -> int:
    from harness.proofs.rescore import rescore

    competition = load_competition(args.competition, args.overrides)
    summary = rescore(competition, open_sinks(competition), force=args.force)
    for evaluation_id, why in summary.skipped.items():
        print(f"{evaluation_id}: not rescored: {why}", file=sys.stderr)
    print(
        f"{len(summary.changed)} record(s) rescored, {summary.unchanged} unchanged, {summary.not_scorable} without predictions, "
        f"{len(summary.skipped)} skipped",
        file=sys.stderr,
    )
    if args.json:
        print_json(
            {
                "competition": competition.name,
                "changed": summary.changed,
                "unchanged": summary.unchanged,
                "not_scorable": summary.not_scorable,
                "skipped": summary.skipped,
            }
        )
        return 0
    return print_leaderboard(competition)
