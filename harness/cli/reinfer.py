"""``harness reinfer``: the infer phase again, with stored models, on a replaced test set."""

from __future__ import annotations

import argparse

from harness.cli.common import add_ids_command, add_json, load_competition, open_sinks, print_json
from harness.client.text import shown
from harness.limits import Verdict


def register(commands) -> None:
    reinfer = add_ids_command(
        commands,
        "reinfer",
        _reinfer,
        "run only the infer phase of these submissions again, with their stored models, on the current test set",
        "SUBMISSION_ID",
    )
    reinfer.add_argument(
        "--force", action="store_true", help="re-infer after finalize too (the new record keeps the outcome it replaced in its history)"
    )
    add_json(reinfer, "the new evaluation records (a list)")


def _reinfer(args: argparse.Namespace) -> int:
    from harness.proofs.reinfer import reinfer

    competition = load_competition(args.competition, args.overrides)
    records = reinfer(competition, args.ids, None, open_sinks(competition), force=args.force)
    if args.json:
        print_json([record.to_dict() for record in records])
    else:
        for record in records:
            scores = ", ".join(f"{part}.{k}={v:.5f}" for part, named in record.scores.items() for k, v in named.items())
            print(f"{record.submission.id} {record.evaluation_id}: {record.verdict} {scores or shown(record.message.splitlines()[0])}")
    return 0 if len(records) == len(args.ids) and all(r.verdict == Verdict.SCORED for r in records) else 1
