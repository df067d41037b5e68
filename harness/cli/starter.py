"""``harness init``: start a submission from the sample."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import add_json, print_json


def register(commands) -> None:
    about = "write a working submission folder (Dockerfile, main.py with train and infer) to start from"
    init = commands.add_parser("init", help=about, description=about)
    init.add_argument("folder", type=Path, help="a new or empty folder, e.g. my-submission")
    add_json(init, "the files written")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from harness.participant.starter import write_starter

    written = write_starter(args.folder)
    if args.json:
        print_json([str(path) for path in written])
        return 0
    for path in written:
        print(path)
    return 0
