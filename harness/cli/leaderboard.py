"""``harness leaderboard``: public during the competition, private once it is finalized."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.cli.common import add_command, load_competition
from harness.util.errors import HarnessError


def register(commands) -> None:
    board = add_command(commands, "leaderboard", _leaderboard, "print the leaderboard built from the evaluation records")
    part = board.add_mutually_exclusive_group()
    part.add_argument("--private", action="store_true", default=None, help="the private board (before finalize: a preview of it)")
    part.add_argument("--public", dest="private", action="store_false", default=None, help="the public board (the default until finalize)")
    board.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    board.add_argument("--json", dest="format", action="store_const", const="json", help="the same as --format json")
    board.add_argument("--team", help="that team's history of submissions instead of the board")
    board.add_argument("--output", type=Path, help="write to this file instead of standard output")


def _leaderboard(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition, args.overrides)
    return print_leaderboard(competition, private=args.private, fmt=args.format, team=args.team, output=args.output)


def print_leaderboard(
    competition, *, private: bool | None = None, fmt: str = "table", team: str | None = None, output: Path | None = None
) -> int:
    """The board (private once finalized, unless ``private`` says) or one team's history."""
    text = _render(competition, private, fmt, team)
    if output is None:
        print(text)
    else:
        _write(output, text if text.endswith("\n") else text + "\n")
        print(f"wrote {output}", file=sys.stderr)
    return 0


def board_data(competition, *, private: bool | None = None) -> list[dict]:
    """The board's entries as data (what ``--json`` prints)."""
    return json.loads(_render(competition, private, "json", None))


def _render(competition, private: bool | None, fmt: str, team: str | None) -> str:
    from harness import leaderboard
    from harness.records.record import load_records
    from harness.scoring import get_metric
    from harness.submissions.ledger import Ledger
    from harness.util.clock import utc_now

    settings, ledger = competition.settings.competition, Ledger.of(competition)
    metric, rules, finalized = get_metric(settings.primary_metric), settings.rules, ledger.finalized_at()
    private = bool(finalized) if private is None else private
    records, selections = load_records(competition.paths.records), ledger.selections()
    attempts = leaderboard.history(records, metric, selections, reveal_private=private)
    if team is not None:
        if fmt == "html":
            raise HarnessError("--team prints a history as table, csv or json; the html page shows every team")
        attempts = [a for a in attempts if a.team == team]
        if not attempts:
            raise HarnessError(f"team {team!r} has no evaluated submission in {competition.name}")
        return leaderboard.render(attempts, fmt, metric, f"{settings.title}: history of team {team}")
    if not private:
        board = "public leaderboard"
    elif finalized:
        board = f"private leaderboard (final, {finalized})"
    else:
        board = "private leaderboard (preview: not finalized)"
    entries = leaderboard.build(records, metric, private=private, rule=rules.rule, selections=selections, fallback=rules.final_selections)
    if fmt != "html":
        return leaderboard.render(entries, fmt, metric, f"{settings.title}: {board}")
    from harness.leaderboard.html import Page, render_page

    page = Page(settings.title, board.capitalize(), metric, "private" if private else "public", rules.rule, utc_now())
    return render_page(page, entries, attempts)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` whole: a reader (a web server) never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
