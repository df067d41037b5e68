"""``harness phase list|open|run``: a competition's phases (``competition.phases``).

``list`` shows each phase with its slice of the test pool, dates, quota and whether it is open or
superseded; ``open`` opens a new phase on an unused slice after a leak (the open one is superseded,
its board kept and marked); ``run`` evaluates each team's selection on a final phase's test set
(queued again by digest, no team pushes) and prints that phase's board, the organizer's preview
until ``harness finalize``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from harness.cli.common import add_command, add_ids_command, add_json, load_competition, print_json
from harness.util.errors import HarnessError


def register(commands) -> None:
    phase = commands.add_parser("phase", help="the competition's phases: list, open one after a leak, run a final one").add_subparsers(
        dest="phase_command", required=True, metavar="ACTION"
    )
    add_json(add_command(phase, "list", _list, "the phases: test slice, dates, quota, open or superseded"), "the phases")
    opened = add_ids_command(
        phase, "open", _open, "open a new phase on an unused slice of the test pool (after a leak); the open phase is superseded", "NAME"
    )
    opened.add_argument("--test-fraction", type=float, required=True, help="its share of the test pool (what the phases left unused)")
    opened.add_argument("--reason", required=True, help="why (shown on the superseded phase's board)")
    opened.add_argument("--per-day", type=int, default=None, help="its quota per team and day (default: competition.quota.per_day)")
    opened.add_argument("--closes", default=None, help="when it closes (ISO 8601); default: never")
    add_json(opened, "the new phase")
    run = add_ids_command(
        phase, "run", _run, "evaluate each team's selected submissions on a final phase's test set, then print its board", "NAME"
    )
    add_json(run, "the re-runs queued and the round's summary")


def _list(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition, args.overrides)
    phases, now = competition.phases, datetime.now(UTC)
    if args.json:
        print_json([{**p.describe(), "open": p.is_open(now)} for p in phases])
        return 0
    if not phases:
        print(f"{competition.name} declares no phases: it is one phase (competition.phases)")
        return 0
    for p in phases:
        state = "open" if p.is_open(now) else "final" if p.final else f"superseded by {p.superseded['by']}" if p.superseded else "closed"
        slice_ = f"test [{p.test_start:.3f}, {p.test_start + p.test_fraction:.3f})"
        print(f"{p.name:<16} {state:<24} {slice_}  opens {p.describe()['opens'] or '-'}  closes {p.describe()['closes'] or '-'}")
    return 0


def _name(args: argparse.Namespace) -> str:
    if len(args.ids) != 1:
        raise HarnessError(f"give one phase name, got {len(args.ids)}: {' '.join(args.ids)}")
    return args.ids[0]


def _open(args: argparse.Namespace) -> int:
    from harness.competition.phases import open_phase

    name = _name(args)
    competition = load_competition(args.competition, args.overrides)
    phase = open_phase(
        competition.settings.competition.phases,
        competition.paths.root,
        name,
        args.test_fraction,
        reason=args.reason,
        per_day=args.per_day,
        closes=args.closes,
    )
    competition.ensure_data()  # carves the new phase's test set
    superseded = [p.name for p in competition.phases if p.superseded and p.superseded["by"] == phase.name]
    print(f"{competition.name}: phase {phase.name} is open; superseded: {', '.join(superseded) or 'none'}", file=sys.stderr)
    if args.json:
        print_json({**phase.describe(), "superseded_phases": superseded})
    return 0


def _run(args: argparse.Namespace) -> int:
    from harness.cli.evaluate import round_summary
    from harness.cli.leaderboard import print_leaderboard
    from harness.results.final_phase import queue_final_phase
    from harness.rounds.driver import drive_round

    name = _name(args)
    competition = load_competition(args.competition, args.overrides)
    queued = queue_final_phase(competition, name)
    for s in queued:
        print(f"{name}: queued {s.id}, team {s.team!r}, a re-run of {s.rerun_of}", file=sys.stderr)
    summary = drive_round(competition)
    if args.json:
        print_json({"queued": {s.id: s.rerun_of for s in queued}, "round": round_summary(competition, summary)})
        return 0
    return print_leaderboard(competition, private=True, organizer=True, phase=name)
