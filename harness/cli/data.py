"""``harness data prepare`` and ``harness data check``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from harness.cli.common import add_command, add_json, load_competition, print_json


def register(commands) -> None:
    data = commands.add_parser("data", help="competition data").add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prepare = add_command(data, "prepare", _prepare, "write the competition's data under the work directory")
    prepare.add_argument(
        "--rebuild",
        action="store_true",
        help="build the data again from the competition file and your files as they are now (the same secret: the same bytes); "
        "refused once the competition has evaluation records",
    )
    add_json(prepare, "where the data is and its hash")
    check = add_command(data, "check", _check, "look for leaks between train and test and for splits unlike the config; exit 1 on an error")
    add_json(check, "the findings")


def _prepare(args: argparse.Namespace) -> int:
    if args.rebuild:
        from harness.competition.config import load_settings
        from harness.competition.core import Competition
        from harness.competition.create import rebuild_data

        competition = Competition.load(load_settings(args.competition, args.overrides))
        rebuild_data(competition)
    else:
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
    print_findings(competition.name, competition.paths.data, findings)
    return 1 if errors else 0


def print_findings(name: str, data, findings) -> None:
    """The data check's findings, a line each, as ``harness data check`` prints them."""
    from harness.competition.datacheck import ERROR, WARNING

    print(f"{name}: data check of {data}")
    for finding in findings:
        print(f"{finding.level.upper():8} {finding.check}: {finding.message}")
    errors, warnings = sum(f.level == ERROR for f in findings), sum(f.level == WARNING for f in findings)
    print(f"{errors} error(s), {warnings} warning(s)")
