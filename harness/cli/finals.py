"""``harness select`` (a team's final selection: the organizer's with ``--team``, a participant's own
through the service without it) and ``harness finalize`` (close a competition)."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, add_ids_command, add_json, load_competition, print_json
from harness.cli.leaderboard import board_data, print_leaderboard
from harness.util.errors import HarnessError


def register(commands) -> None:
    select = add_ids_command(
        commands,
        "select",
        _select,
        "choose a team's scored submissions for the private leaderboard (replaces its earlier choice); "
        "without --team, your own team's on the service you are logged in to (harness login)",
        "SUBMISSION_ID",
    )
    select.add_argument("--team", help="the organizer choosing for this team in the local ledger")
    add_json(select, "the selection")
    finalize = add_command(
        commands,
        "finalize",
        _finalize,
        "close the competition: no more submissions or selections; print the private leaderboard (of the final phase, if declared, "
        "which must have run: harness phase run)",
    )
    add_json(finalize, "the time of closing and the final private leaderboard")


def _select(args: argparse.Namespace) -> int:
    if args.team is None:
        from harness.cli.remote import remote_select

        return remote_select(args)
    from harness.results import Results

    competition = load_competition(args.competition, args.overrides)
    results = Results(competition)
    results.ledger.select(args.team, args.ids, limit=results.rules.final_selections, scored=results.scored())
    print(f"team {args.team!r} selected {', '.join(args.ids)} for the private leaderboard of {competition.name}", file=sys.stderr)
    if args.json:
        print_json({"competition": competition.name, "team": args.team, "selected": args.ids})
    return 0


def _finalize(args: argparse.Namespace) -> int:
    from harness.proofs.rerun_report import missing_rerun
    from harness.results.final_phase import final_phases_not_run
    from harness.submissions.ledger import Ledger

    competition = load_competition(args.competition, args.overrides)
    if missing := final_phases_not_run(competition):
        raise HarnessError(
            f"the final phase {missing[0]} of {competition.name} has not run: run `harness phase run {competition.name} {missing[0]}` "
            "(it evaluates each team's selection on its test set), then finalize"
        )
    ledger = Ledger.of(competition)
    if ledger.finalized_at() is None and (missing := missing_rerun(competition)) is not None:
        raise HarnessError(f"{competition.name} is not finalized: {missing}")
    finalized_at = ledger.finalize()
    print(f"{competition.name} finalized at {finalized_at}: the private leaderboard is final", file=sys.stderr)
    if args.json:
        print_json({"competition": competition.name, "finalized_at": finalized_at, "leaderboard": board_data(competition, private=True)})
        return 0
    return print_leaderboard(competition, private=True)
