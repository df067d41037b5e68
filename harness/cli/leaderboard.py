"""``harness leaderboard``: public during the competition, private once it is finalized.

Built from the records the ledger lists for each submission, each one valid and, with a key
configured, signed by the organizer; any other file in ``records/`` is skipped with a warning.
Before ``finalize`` the private scores are the organizer's alone: ``--private`` needs ``--organizer``.
``--remote`` prints the board of the service a participant is logged in to instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import add_command, load_competition
from harness.util.errors import HarnessError
from harness.util.files import write_text_atomic


def register(commands) -> None:
    board = add_command(commands, "leaderboard", _leaderboard, "print the leaderboard built from the evaluation records")
    part = board.add_mutually_exclusive_group()
    part.add_argument(
        "--private", action="store_true", default=None, help="the private board (before finalize: an organizer's preview, with --organizer)"
    )
    part.add_argument("--public", dest="private", action="store_false", default=None, help="the public board (the default until finalize)")
    board.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    board.add_argument("--json", dest="format", action="store_const", const="json", help="the same as --format json")
    board.add_argument("--team", help="that team's history of submissions instead of the board")
    board.add_argument("--phase", help="the board of this phase (default: the open one; after finalize, the final one)")
    board.add_argument("--output", type=Path, help="write to this file instead of standard output")
    board.add_argument(
        "--organizer", action="store_true", help="the organizer's preview of the private scores before finalize (never publish it)"
    )
    board.add_argument(
        "--remote", action="store_true", help="the board of the service you are logged in to (harness login), as table or JSON"
    )


def _leaderboard(args: argparse.Namespace) -> int:
    if args.remote:
        from harness.cli.remote import remote_leaderboard

        return remote_leaderboard(args)
    competition = load_competition(args.competition, args.overrides)
    return print_leaderboard(
        competition, private=args.private, fmt=args.format, team=args.team, output=args.output, organizer=args.organizer, phase=args.phase
    )


def print_leaderboard(
    competition,
    *,
    private: bool | None = None,
    fmt: str = "table",
    team: str | None = None,
    output: Path | None = None,
    organizer: bool = False,
    phase: str | None = None,
) -> int:
    """The board (private once finalized, unless ``private`` says) or one team's history; before
    finalize the private board only for the ``organizer``."""
    if output is not None and not output.parent.is_dir():
        raise HarnessError(f"--output {output}: the folder {output.parent} does not exist")
    text = _render(competition, private, fmt, team, organizer, phase)
    if output is None:
        print(text)
    else:
        write_text_atomic(output, text if text.endswith("\n") else text + "\n", what="the leaderboard")
        print(f"wrote {output}", file=sys.stderr)
    return 0


def board_data(competition, *, private: bool | None = None, phase: str | None = None) -> list[dict]:
    """The board's entries as data (what ``--json`` prints)."""
    return json.loads(_render(competition, private, "json", None, organizer=False, phase=phase))


def _render(competition, private: bool | None, fmt: str, team: str | None, organizer: bool, phase: str | None = None) -> str:
    from harness import leaderboard
    from harness.leaderboard import columns
    from harness.results import Results
    from harness.util.clock import utc_now

    results = Results(competition, phase=phase)
    part = results.part(private, organizer=organizer)
    title, metric, records = competition.settings.competition.title, results.metric, results.records()
    attempts = results.history(records, part)
    if team is not None:
        if fmt == "html":
            raise HarnessError("--team prints a history as table, csv or json; the html page shows every team")
        attempts = [a for a in attempts if a.team == team]
        if not attempts:
            raise HarnessError(f"team {team!r} has no evaluated submission in {competition.name}")
        return leaderboard.render(attempts, fmt, metric, f"{title}: history of team {team}")
    entries = results.board(records, part)
    legend = columns.legend(results.rules.confidence, results.rules.resamples)
    if fmt != "html":
        return leaderboard.render(entries, fmt, metric, f"{title}: {part.title}", results.columns, legend)
    from harness.leaderboard.html import Page, render_page

    page = Page(title, part.title.capitalize(), metric, part.name, results.rules.rule, utc_now(), results.columns, legend)
    return render_page(page, entries, attempts)
