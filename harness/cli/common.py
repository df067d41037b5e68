"""What the commands share: argument conventions, loading a competition, the Docker client."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from harness.errors import HarnessError


def add_command(commands, name: str, handler: Callable[[argparse.Namespace], int], help: str, competition: bool = True) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help, description=help)
    if competition:
        sub.add_argument("competition", help="competition name (a file in configs/competition/)")
    sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides, e.g. limits.train.wall_clock_s=600")
    sub.set_defaults(handler=handler)
    return sub


def load_competition(name: str, overrides: list[str]):
    """The competition with its data prepared (the first use writes it)."""
    from harness.competition import Competition
    from harness.config import load_settings

    competition = Competition.load(load_settings(name, overrides))
    competition.ensure_data()
    return competition


def docker_client():
    from runner.engine import EngineUnavailable, connect

    try:
        return connect()
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None
