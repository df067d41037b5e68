"""``harness images build``."""

from __future__ import annotations

import argparse

from harness.cli.common import add_command, add_json, docker_client, print_json, progress
from harness.util.errors import HarnessError


def register(commands) -> None:
    images = commands.add_parser("images", help="participant base and sample images").add_subparsers(
        dest="images_command", required=True, metavar="ACTION"
    )
    build = add_command(
        images,
        "build",
        _build,
        "build harness/python:3.11 and the sample submissions (harness/sample-submission:latest, harness/sample-tables:latest)",
        competition=False,
    )
    add_json(build, "each image's tag and id")
    lock = add_command(
        images,
        "lock",
        _lock,
        "resolve images.packages afresh and write the wheelhouse lock that every build then downloads exactly (images.lock)",
        competition=False,
    )
    lock.add_argument("--output", metavar="FILE", help="where to write the lock (default: the file images.lock names)")


def build(overrides: list[str]) -> dict[str, str]:
    from harness.competition.config import compose_config
    from harness.competition.paths import harness_home
    from harness.participant.images import ImageBuildError, build_images

    docker_client()
    cfg = compose_config("digits", overrides)
    try:
        return build_images(cfg.images, harness_home(), log=progress)
    except ImageBuildError as exc:
        raise HarnessError(str(exc)) from None


def _build(args: argparse.Namespace) -> int:
    built = build(args.overrides)
    if args.json:
        print_json(built)
        return 0
    for tag, image_id in built.items():
        print(f"{tag} {image_id}")
    return 0


def _lock(args: argparse.Namespace) -> int:
    from harness.competition.config import compose_config
    from harness.participant.images import ImageBuildError, image_python
    from harness.participant.wheelhouse import write_lock

    cfg = compose_config("digits", args.overrides)
    try:
        path = write_lock(cfg.images, args.output, python=image_python(cfg.images), log=progress)
    except ImageBuildError as exc:
        raise HarnessError(str(exc)) from None
    print(path)
    return 0
