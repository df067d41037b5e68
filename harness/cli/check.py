"""``harness check``: a participant's local run under the official contract."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import EXTRAS, add_json, load_competition
from harness.client.text import shown_log
from harness.limits import Verdict
from harness.util.errors import HarnessError

HELP = "run an image locally under the official contract, limits and verdicts"


def register(commands) -> None:
    check = commands.add_parser("check", help=HELP, description=HELP)
    check.add_argument("competition", nargs="?", help="competition name (the organizer's data); leave it out with --kit", default=None)
    check.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides (not with --kit)")
    check.add_argument("--image", required=True)
    check.add_argument(
        "--kit",
        metavar="DIR",
        help="a participant kit (harness kit): train on its training part, infer on its dev inputs, print dev scores",
    )
    check.set_defaults(handler=_check, **{EXTRAS: "overrides"})
    add_json(check, "the evaluation record")


def _check(args: argparse.Namespace) -> int:
    from harness.evaluation.check import check_image, check_kit

    if args.competition and "=" in args.competition:
        args.overrides.insert(0, args.competition)
        args.competition = None
    if args.kit:
        if args.overrides:
            raise HarnessError("check --kit runs the kit's own contract: it takes no KEY=VALUE overrides")
        if args.competition:
            from harness.competition.kit import read_kit

            named = read_kit(Path(args.kit).resolve()).get("competition")
            if named != args.competition:
                raise HarnessError(f"the kit {args.kit} is for {named}, not {args.competition}")
        record = check_kit(Path(args.kit), args.image)
        parts = {"dev": scores} if (scores := record.scores.get("public")) else {}
    else:
        if not args.competition:
            raise HarnessError("give a competition (the organizer's data) or --kit DIR (a participant kit)")
        record = check_image(load_competition(args.competition, args.overrides), args.image)
        parts = record.scores
    if args.json:
        print(record.to_json())
    else:
        print(f"verdict: {record.verdict}")
        if record.message:
            print(f"why: {shown_log(record.message)}")  # it quotes the container's output: shown, never acted on
        for part, scores in parts.items():
            print(f"{part}: " + ", ".join(f"{k}={v:.5f}" for k, v in scores.items()))
    return 0 if record.verdict == Verdict.SCORED else 1
