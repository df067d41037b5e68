"""``harness data prepare`` and ``harness data check``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from harness.cli.common import add_command, add_json, load_competition, print_json


def register(commands) -> None:
    data = commands.add_parser("data", help="competition data").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    add_json(
        add_command(data, "prepare", _prepare, "write the competition's data under the work directory"), "where the data is and its hash"
    )
    check = add_command(data, "check", _check, "look for leaks between train and test and for splits unlike the config; exit 1 on an error")
    add_json(check, "the findings")


def _prepare(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition, args.overrides)
    if args.json:
        print_json({"competition": competition.name, "data": str(competition.paths.data), "data_sha256": competition.data_sha256})
    else:
        print(f"{competition.name}: data ready under {competition.paths.data} (hash {competition.data_sha256[:12]})")
    return 0


def _check(args: argparse.Namespace) -> int:
    from harness.competition.datacheck import ERROR, WARNING, check_data

    competition = load_competition(args.competition, args.overrides)
    findings = check_data(competition)
    errors, warnings = sum(f.level == ERROR for f in findings), sum(f.level == WARNING for f in findings)
    if args.json:
        print_json(
            {
                "competition": competition.name,
                "data": str(competition.paths.data),
                "findings": [asdict(f) for f in findings],
                "errors": errors,
                "warnings": warnings,
            }
        )
        return 1 if errors else 0
    print(f"{competition.name}: data check of {competition.paths.data}")
    for finding in findings:
        print(f"{finding.level.upper():8} {finding.check}: {finding.message}")
    print(f"{errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0
