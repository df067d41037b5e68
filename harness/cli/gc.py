"""``harness gc``: list what the retention policy lets the head free (a dry run), or free it (``--apply``)."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, add_json, engine, load_competition, print_json


def register(commands) -> None:
    gc = add_command(
        commands,
        "gc",
        _gc,
        "list the run models, depot archives and pulled images that no kept submission needs (a dry run); --apply frees them",
    )
    gc.add_argument("--apply", action="store_true", help="free what is listed (never a record, the ledger, logs or predictions)")
    add_json(gc, "each item (kind, what, bytes, why) and the total")


def _gc(args: argparse.Namespace) -> int:
    from harness.rounds.reclaim import as_json, collect
    from harness.util.sizes import format_size

    competition = load_competition(args.competition, args.overrides)
    items, failed = collect(competition, engine(competition), apply=args.apply)
    if args.json:
        print_json({"competition": competition.name, "applied": args.apply, **as_json(items), "not_freed": failed})
    else:
        for item in items:
            print(f"{item.kind:<12} {format_size(item.bytes):>10}  {item.what}  ({item.why})")
    total = format_size(sum(item.bytes for item in items))
    done = "freed" if args.apply else "would free (run again with --apply to free it)"
    for why in failed:
        print(f"not freed: {why}", file=sys.stderr)
    print(f"{len(items)} item(s), {total}: {done}", file=sys.stderr)
    return 1 if failed else 0
