"""``harness data prepare``."""

from __future__ import annotations

import argparse

from harness.cli.common import add_command, load_competition


def register(commands) -> None:
    data = commands.add_parser("data", help="competition data").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    add_command(data, "prepare", _prepare, "write the competition's data under the work directory")


def _prepare(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition, args.overrides)
    print(f"{competition.name}: data ready under {competition.paths.data} (hash {competition.data_sha256[:12]})")
    return 0
