"""``harness check``: a participant's local run under the official contract."""

from __future__ import annotations

import argparse

from harness.cli.common import add_command, add_json, docker_client, load_competition


def register(commands) -> None:
    check = add_command(commands, "check", _check, "run an image locally under the official contract, limits and verdicts")
    check.add_argument("--image", required=True)
    add_json(check, "the evaluation record")


def _check(args: argparse.Namespace) -> int:
    from harness.evaluation.check import check_image

    record = check_image(load_competition(args.competition, args.overrides), args.image, docker_client())
    if args.json:
        print(record.to_json())
    else:
        print(f"verdict: {record.verdict}")
        if record.message:
            print(f"why: {record.message}")
        for part, scores in record.scores.items():
            print(f"{part}: " + ", ".join(f"{k}={v:.5f}" for k, v in scores.items()))
    return 0 if record.verdict == "SCORED" else 1
