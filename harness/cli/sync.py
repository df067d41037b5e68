"""``harness sync``: upload the records a tracking outage kept on disk."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, add_json, load_competition, open_tracker, print_json


def register(commands) -> None:
    sync = add_command(
        commands, "sync", _sync, "upload to MLflow every record whose run is missing or unfinished (after a tracking outage)"
    )
    add_json(sync, "what was uploaded")


def _sync(args: argparse.Namespace) -> int:
    from harness.proofs.sync import sync

    competition = load_competition(args.competition, args.overrides)
    summary = sync(competition, open_tracker(competition))
    if args.json:
        print_json({"competition": competition.name, "uploaded": summary.uploaded, "present": summary.present, "failed": summary.failed})
    else:
        for evaluation_id in summary.uploaded:
            print(f"{evaluation_id}: uploaded")
    for evaluation_id, why in summary.failed.items():
        print(f"{evaluation_id}: not uploaded: {why}", file=sys.stderr)
    print(f"{len(summary.uploaded)} uploaded, {summary.present} already in MLflow, {len(summary.failed)} failed", file=sys.stderr)
    return 1 if summary.failed else 0
