"""``harness competition new``: a competition from the organizer's own table or folder of files, with no code."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from harness.cli.common import add_json, print_json

HELP = (
    "open a competition from your own files: a labelled table (CSV or Parquet) or a folder of per-item files with a table "
    "of their labels; writes the competition file, builds the data (opaque keyed ids, the split, the hidden labels), "
    "checks it and prints the next commands"
)


def register(commands) -> None:
    group = commands.add_parser("competition", help="open a competition from your own files").add_subparsers(
        dest="competition_command", required=True, metavar="ACTION"
    )
    new = group.add_parser("new", help=HELP, description=HELP)
    new.add_argument("name", metavar="NAME", help="the competition's name: its file is competition/NAME.yaml")
    new.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="TABLE_OR_FOLDER",
        help="a labelled table (.csv, .tsv, .parquet; one row per item), or a folder of per-item files holding one such table "
        "that names each row's file",
    )
    new.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict (kept hidden for the test rows)")
    new.add_argument(
        "--test-table", metavar="TABLE", help="a labelled test table with the same columns (default: the test rows are carved out)"
    )
    new.add_argument("--id-column", metavar="COLUMN", help="your own id column: never published, each row gets an opaque keyed id")
    split = new.add_mutually_exclusive_group()
    split.add_argument("--group-column", metavar="COLUMN", help="test rows are whole groups of this column (a patient, a site)")
    split.add_argument("--time-column", metavar="COLUMN", help="test rows are the latest by this column (numbers or ISO dates)")
    new.add_argument(
        "--table", metavar="TABLE", help="with --from FOLDER: the table of the files' labels (default: the folder's one table)"
    )
    new.add_argument("--file-column", metavar="COLUMN", help="with --from FOLDER: the column naming each row's file (default: found)")
    new.add_argument(
        "--drop-column", dest="drop_columns", action="append", default=[], metavar="COLUMN", help="a column never published (repeatable)"
    )
    new.add_argument("--test-fraction", type=float, default=0.3, metavar="F", help="share of the rows carved into test (default 0.3)")
    new.add_argument(
        "--public-fraction", type=float, default=0.5, metavar="F", help="share of the test ids on the public board (default 0.5)"
    )
    new.add_argument(
        "--kind", choices=("label", "value", "probabilities"), help="what is predicted (default: value for numbers, label for classes)"
    )
    new.add_argument("--metric", metavar="NAME", help="the metric that ranks (default: rmse for a value, accuracy for a label)")
    new.add_argument("--title", metavar="TEXT", help="the competition's title (default: its name)")
    add_json(new, "what was written, the data check's findings and the next commands")
    new.set_defaults(handler=_new)


def _new(args: argparse.Namespace) -> int:
    from harness.competition.create import Request, new_competition
    from harness.competition.datacheck import ERROR

    request = Request(
        name=args.name,
        source=args.source,
        target=args.target,
        test_table=args.test_table,
        table=args.table,
        file_column=args.file_column,
        id_column=args.id_column,
        group_column=args.group_column,
        time_column=args.time_column,
        drop_columns=args.drop_columns,
        test_fraction=args.test_fraction,
        public_fraction=args.public_fraction,
        kind=args.kind,
        metric=args.metric,
        title=args.title,
    )
    created = new_competition(request)
    errors = sum(f.level == ERROR for f in created.findings)
    if args.json:
        print_json({**asdict(created), "findings": [asdict(f) for f in created.findings], "errors": errors})
        return 1 if errors else 0
    rows = created.rows
    print(f"{created.name}: wrote {created.config}")
    print(f"{created.name}: target {request.target}: {created.why}; kind {created.kind}, scored by {', '.join(created.metrics)}")
    print(
        f"{created.name}: data built under {created.data} (hash {created.data_sha256[:12]}): {rows['train']} training rows, "
        f"{rows['test']} test rows ({rows['public']} public, {rows['private']} private), test = {created.split}"
    )
    from harness.cli.data import print_findings

    print_findings(created.name, created.data, created.findings)
    print("\nNext:")
    width = max(len(line.split("  # ")[0]) for line in created.next)
    for line in created.next:
        command, _, why = line.partition("  # ")
        print(f"  {command.ljust(width)}  # {why}")
    return 1 if errors else 0
