"""``harness data prepare`` and ``harness data check``."""

from __future__ import annotations

import argparse

from harness.cli.common import add_command, load_competition


def register(commands) -> None:
    data = commands.add_parser("data", help="competition data").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    add_command(data, "prepare", _prepare, "write the competition's data under the work directory")
    add_command(data, "check", _check, "look for leaks between train and test and for splits unlike the config; exit 1 on an error")


def _prepare(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition, args.overrides)
    print(f"{competition.name}: data ready under {competition.paths.data} (hash {competition.data_sha256[:12]})")
    return 0


def _check(args: argparse.Namespace) -> int:
    from harness.competition.datacheck import ERROR, check_data

    competition = load_competition(args.competition, args.overrides)
    findings = check_data(competition)
    print(f"{competition.name}: data check of {competition.paths.data}")
    for finding in findings:
        print(f"{finding.level.upper():8} {finding.check}: {finding.message}")
    errors = sum(f.level == ERROR for f in findings)
    print(f"{errors} error(s), {sum(f.level == 'warning' for f in findings)} warning(s)")
    return 1 if errors else 0
