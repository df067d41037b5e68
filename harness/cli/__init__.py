"""The ``harness`` command line: one module per command group, each with a ``register``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from harness.cli import audit, check, data, demo, evaluate, finals, images, leaderboard, reinfer, rescore, starter, sync, verify
from harness.util.errors import HarnessError

EXIT_ERROR = 2
COMMAND_MODULES = (evaluate, leaderboard, finals, check, demo, images, data, starter, audit, rescore, reinfer, sync, verify)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description="Evaluate competition submissions in containers, reproducibly.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
