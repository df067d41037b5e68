"""The ``harness`` command line: one module per command group, each with a ``register``.

Every command takes its options and its ``KEY=VALUE`` configuration overrides in any order after
its name; ``--config-dir DIR`` (before or after the command) layers an organizer's configuration
directory on top of the bundled one; ``harness`` alone lists the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.cli import (
    audit,
    check,
    competition,
    completion,
    data,
    demo,
    evaluate,
    finals,
    gc,
    images,
    keys,
    kit,
    leaderboard,
    moderate,
    phase,
    reinfer,
    remote,
    rerun,
    rescore,
    serve,
    starter,
    sync,
    verify,
    webhooks,
)
from harness.cli.common import EXIT_ERROR, EXTRAS, Parser
from harness.util.errors import HarnessError
from harness.util.extras import organizer_missing

COMMAND_MODULES = (
    evaluate,
    leaderboard,
    finals,
    phase,
    rerun,
    moderate,
    check,
    remote,
    kit,
    demo,
    images,
    competition,
    data,
    starter,
    audit,
    rescore,
    reinfer,
    sync,
    gc,
    verify,
    keys,
    serve,
    webhooks,
    completion,
)
# Two-word commands that live beside a one-word command of the same first word: `kit pull` is `kit-pull`.
ROUTES = {("kit", "pull"): "kit-pull"}
CONFIG_PATH_ENV = "HARNESS_CONFIG_PATH"  # read by harness.competition.config: directories layered on the bundled configs
CONFIG_DIR_HELP = f"an organizer's configuration directory layered on top of the bundled one (repeatable; prepended to ${CONFIG_PATH_ENV})"


def build_parser() -> argparse.ArgumentParser:
    from harness import __version__

    parser = Parser(prog="harness", description="Evaluate competition submissions in containers, reproducibly.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("--config-dir", dest="config_dirs", action="append", default=[], metavar="DIR", help=CONFIG_DIR_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    for leaf in _commands(parser):
        # The same option after the command; a dest of its own, or the command's value would replace the one before it.
        leaf.add_argument(
            "--config-dir", dest="command_config_dirs", action="append", default=argparse.SUPPRESS, metavar="DIR", help=CONFIG_DIR_HELP
        )
        leaf.set_defaults(_command=leaf)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    try:
        args = parse(argv, parser)
    except SystemExit as exc:  # --help, --version and usage mistakes (already reported by the parser)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        with _config_path([*args.config_dirs, *getattr(args, "command_config_dirs", [])]):
            return args.handler(args)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ImportError as exc:  # an organizer command in a participant's install (no harness[organizer])
        missing = organizer_missing(exc, f"`{args._command.prog}`")
        if missing is None:
            raise
        print(f"harness: {missing}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


def parse(argv: Sequence[str], parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The command line, options and positional tokens in any order after the command.

    argparse gives a ``nargs="*"`` positional (the overrides) its tokens only where they follow the
    positional before it directly; tokens after an option come back as extras. They join the
    command's overrides (or ids), the way ``parse_intermixed_args`` would if it allowed subcommands.
    """
    parser = parser or build_parser()
    args, extras = parser.parse_known_args(_route(list(argv)))
    if args.command is None:
        parser.error("give a command (harness --help lists them)")
    if extras:
        target, command = getattr(args, EXTRAS, None), args._command
        strays = [token for token in extras if token.startswith("-")]
        if strays or target is None:
            command.error(f"unrecognized arguments: {' '.join(strays or extras)}")
        getattr(args, target).extend(extras)
    return args


def _route(argv: list[str]) -> list[str]:
    """``argv`` with a two-word command of ``ROUTES`` (after any ``--config-dir DIR``) as its one parser's name."""
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        at += 2 if argv[at] == "--config-dir" else 1
    if (route := ROUTES.get(tuple(argv[at : at + 2]))) is not None:
        return [*argv[:at], route, *argv[at + 2 :]]
    return argv


@contextmanager
def _config_path(directories: list[str]) -> Iterator[None]:
    """Prepend ``directories`` to ``$HARNESS_CONFIG_PATH`` for the command (restored after it: ``main`` runs in tests too)."""
    if not directories:
        yield
        return
    layers = []
    for directory in directories:
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise HarnessError(f"--config-dir {directory}: no such directory")
        layers.append(str(path.resolve()))
    before = os.environ.get(CONFIG_PATH_ENV)
    os.environ[CONFIG_PATH_ENV] = os.pathsep.join([*layers, *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CONFIG_PATH_ENV, None)
        else:
            os.environ[CONFIG_PATH_ENV] = before


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (``data check``, not ``data``)."""
    groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not groups:
        yield parser
    for group in groups:
        for sub in dict.fromkeys(group.choices.values()):
            yield from _commands(sub)
