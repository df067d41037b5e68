"""``harness demo``: the whole path once, on the bundled example."""

from __future__ import annotations

import argparse

from harness.cli import images
from harness.cli.common import add_command, add_json, load_competition
from harness.cli.evaluate import run_round, submit_image

SAMPLE = "harness/sample-submission:latest"


def register(commands) -> None:
    demo = add_command(
        commands, "demo", _demo, "build the images, prepare the digits data, submit the sample and run a round", competition=False
    )
    add_json(demo, "the round's summary (instead of the leaderboard)")


def _demo(args: argparse.Namespace) -> int:
    images.build(args.overrides)
    # The demo may run many times a day on one work directory: no quota for its sample team.
    competition = load_competition("digits", ["competition.quota.per_day=null", *args.overrides])
    submit_image(competition, "sample", SAMPLE)
    return run_round(competition, as_json=args.json)
