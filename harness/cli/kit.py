"""``harness kit``: the participant kit of a competition (organizer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_command, add_json, load_competition, print_json, progress

HELP = (
    "write the participant kit: the contract, the training data with a dev split, the sample submission, the base image's inputs "
    "(a participant gets it from the service with `harness kit pull COMPETITION`)"
)


def register(commands) -> None:
    kit = add_command(commands, "kit", _kit, HELP)
    kit.add_argument("--output", required=True, metavar="DIR", help="where to write the kit (absent or empty)")
    add_json(kit, "the kit's kit.json")


def _kit(args: argparse.Namespace) -> int:
    from harness.competition.kit import build_kit

    competition = load_competition(args.competition, args.overrides)
    output = Path(args.output).resolve()
    kit = build_kit(competition, output)
    if args.json:
        print_json({"output": str(output), **kit})
    else:
        rule = kit["dev_split"]
        progress(f"{competition.name}: kit written to {output}")
        print(f"{output}: {rule['train_rows']} training rows, {rule['dev_rows']} dev rows (split {rule['by']}, seed {rule['seed']})")
    return 0
