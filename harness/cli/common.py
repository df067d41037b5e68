"""What the commands share: argument conventions, loading a competition, the Docker client."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from harness.util.errors import HarnessError


def add_command(
    commands, name: str, handler: Callable[[argparse.Namespace], int], help: str, competition: bool = True
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help, description=help)
    if competition:
        sub.add_argument("competition", help="competition name (a file in configs/competition/)")
    sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides, e.g. limits.train.wall_clock_s=600")
    sub.set_defaults(handler=handler)
    return sub


def add_ids_command(
    commands, name: str, handler: Callable[[argparse.Namespace], int], help: str, ids: str, nargs: str = "+"
) -> argparse.ArgumentParser:
    """A command on ``COMPETITION ID... [KEY=VALUE...]``: the handler gets ``args.ids`` and ``args.overrides``."""
    sub = commands.add_parser(name, help=help, description=help)
    sub.add_argument("competition", help="competition name (a file in configs/competition/)")
    sub.add_argument("items", nargs=nargs, metavar=ids, help=f"{ids} (KEY=VALUE configuration overrides may follow)")

    def split(args: argparse.Namespace) -> int:
        args.ids = [item for item in args.items if "=" not in item]
        args.overrides = [item for item in args.items if "=" in item]
        return handler(args)

    sub.set_defaults(handler=split)
    return sub


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
    from harness.runner.engine import EngineUnavailable, connect

    try:
        return connect()
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None
