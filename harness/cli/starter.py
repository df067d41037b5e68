"""``harness init``: start a submission from the sample."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    about = "write a working submission folder (Dockerfile, main.py with train and infer) to start from"
    init = commands.add_parser("init", help=about, description=about)
    init.add_argument("folder", type=Path, help="a new or empty folder, e.g. my-submission")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from harness.participant.starter import write_starter

    for path in write_starter(args.folder):
        print(path)
    return 0
