"""What the commands share: argument conventions, JSON output, loading a competition, the Docker client."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from harness.util.errors import ConfigError, HarnessError

EXIT_ERROR = 2
EXTRAS = "_extras"  # the argument that takes the KEY=VALUE (and id) tokens found after an option


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage mistakes are one ``harness:`` line and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_ERROR, f"harness: {message} (see '{self.prog} --help')\n")


def add_command(
    commands, name: str, handler: Callable[[argparse.Namespace], int], help: str, competition: bool = True
) -> argparse.ArgumentParser:
    """A command on ``[COMPETITION] [KEY=VALUE...]``, options anywhere after the command's name."""
    sub = commands.add_parser(name, help=help, description=help)
    if competition:
        sub.add_argument("competition", help="competition name (a competition/NAME.yaml in a --config-dir or the bundled configs)")
    sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides, e.g. limits.train.wall_clock_s=600")
    sub.set_defaults(handler=handler, **{EXTRAS: "overrides"})
    return sub


def add_ids_command(
    commands, name: str, handler: Callable[[argparse.Namespace], int], help: str, ids: str, nargs: str = "+"
) -> argparse.ArgumentParser:
    """A command on ``COMPETITION ID... [KEY=VALUE...]``, ids and overrides mixed, options anywhere:
    the handler gets ``args.ids`` and ``args.overrides``."""
    sub = commands.add_parser(name, help=help, description=help)
    sub.add_argument("competition", help="competition name (a competition/NAME.yaml in a --config-dir or the bundled configs)")
    sub.add_argument("items", nargs=nargs, metavar=ids, help=f"{ids} (KEY=VALUE configuration overrides may come among them)")

    def split(args: argparse.Namespace) -> int:
        args.ids = [item for item in args.items if "=" not in item]
        args.overrides = [item for item in args.items if "=" in item]
        return handler(args)

    sub.set_defaults(handler=split, **{EXTRAS: "items"})
    return sub


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    """The one spelling of machine-readable output: ``--json`` prints ``what`` as JSON on standard output."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on standard output (progress stays on standard error)")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def progress(text: str) -> None:
    """A line for the person at the terminal, never mixed into the data on standard output."""
    print(text, file=sys.stderr, flush=True)


def open_tracker(competition):
    """The competition's MLflow tracking, as configured (``tracking.uri``); it connects on first use."""
    from harness.records.tracking import Tracker

    return Tracker.for_competition(competition)


def open_sinks(competition):
    """Where the competition's records go besides their files (MLflow, as configured)."""
    from harness.records.sinks import RecordSinks

    return RecordSinks.for_competition(competition)


def load_competition(name: str, overrides: list[str]):
    """The competition with its data prepared (the first use writes it)."""
    from harness.competition.config import load_settings
    from harness.competition.core import Competition

    competition = Competition.load(load_settings(name, overrides))
    competition.ensure_data()
    return competition


def docker_client():
    """The Docker engine's client, for the participant's side (building and pushing images)."""
    from harness.runner import EngineUnavailable, connect_engine

    try:
        return connect_engine()
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None


def engine(competition):
    """The competition's ``runner.backend`` on this machine's engine (intake, gc): the organizer's
    side reaches the engine only through it."""
    from harness.runner import EngineUnavailable, create_backend

    try:
        return create_backend(competition.settings.runner.backend)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None
