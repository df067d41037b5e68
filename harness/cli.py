"""The ``harness`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from harness.errors import HarnessError

EXIT_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Evaluate competition submissions in containers, reproducibly.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str, competition: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        if competition:
            sub.add_argument("competition", help="competition name (a file in configs/competition/)")
        sub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="configuration overrides, e.g. limits.train.wall_clock_s=600")
        sub.set_defaults(handler=handler)
        return sub

    submit = command("submit", _submit, "pin an image to its digest and queue it for the next round")
    submit.add_argument("--team", required=True)
    submit.add_argument("--image", required=True, help="image reference or id on the local engine")
    command("round", _round, "evaluate every pending submission (Ray tasks), then print the leaderboard")
    board = command("leaderboard", _leaderboard, "print the leaderboard built from the evaluation records")
    board.add_argument("--private", action="store_true", help="rank on the private part of the test set")
    board.add_argument("--format", choices=("table", "csv", "json"), default="table")
    check = command("check", _check, "run an image locally under the official contract, limits and verdicts")
    check.add_argument("--image", required=True)
    check.add_argument("--json", action="store_true", help="print the evaluation record as JSON")
    command("demo", _demo, "prepare the digits data, build the images, submit the sample and run a round", competition=False)
    images = commands.add_parser("images", help="participant base and sample images").add_subparsers(dest="images_command", required=True)
    build = images.add_parser("build", help="build harness/python:3.11 and harness/sample-submission:latest")
    build.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    build.set_defaults(handler=_images_build)
    data = commands.add_parser("data", help="competition data").add_subparsers(dest="data_command", required=True)
    prepare = data.add_parser("prepare", help="write the competition's data under the work directory")
    prepare.add_argument("competition")
    prepare.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    prepare.set_defaults(handler=_data_prepare)
    return parser


def _competition(args: argparse.Namespace, name: str | None = None):
    from harness.competition import Competition
    from harness.config import load_settings

    competition = Competition.load(load_settings(name or args.competition, args.overrides))
    competition.ensure_data()
    return competition


def _client():
    from runner.engine import EngineUnavailable, connect

    try:
        return connect()
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None


def _submit(args: argparse.Namespace) -> int:
    from harness.intake import pin_image
    from harness.ledger import Ledger

    competition = _competition(args)
    pinned = pin_image(_client(), args.image)
    submission = Ledger(competition.paths.submissions, competition.name).add(args.team, args.image, pinned.digest)
    print(f"submitted {args.image} ({pinned.digest[:19]}) for team {submission.team!r}", file=sys.stderr)
    print(submission.id)
    return 0


def _round(args: argparse.Namespace, competition=None) -> int:
    from harness.ledger import Ledger
    from harness.round import Round
    from harness.tracking import Tracker
    from runner.ray_pool import RayPhasePool

    competition = competition or _competition(args)
    settings = competition.settings
    client = _client()
    ledger = Ledger(competition.paths.submissions, competition.name)
    if not ledger.pending():
        print(f"no pending submissions in {competition.name}", file=sys.stderr)
    else:
        tracker = Tracker(settings.tracking.get("uri"), settings.tracking.experiment, competition.home)
        pool = RayPhasePool(settings.runner.get("address"), settings.runner.get("max_parallel"))
        summary = Round(competition, ledger, tracker, pool, client, infra_retries=settings.runner.infra_retries).run()
        counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(summary.counts().items()))
        print(f"{summary.round_id}: {len(summary.records)} evaluated in {summary.wall_s:.1f} s ({counts or 'none'})", file=sys.stderr)
        if summary.cancelled:
            return 130
    return _print_leaderboard(competition, private=False, fmt="table")


def _leaderboard(args: argparse.Namespace) -> int:
    return _print_leaderboard(_competition(args), private=args.private, fmt=args.format)


def _print_leaderboard(competition, *, private: bool, fmt: str) -> int:
    from harness import leaderboard
    from harness.record import load_records
    from harness.scoring import get_metric

    metric = get_metric(competition.settings.competition.primary_metric)
    entries = leaderboard.build(load_records(competition.paths.records), metric, private=private)
    title = f"{competition.settings.competition.title}: {'private' if private else 'public'} leaderboard"
    print(leaderboard.render(entries, fmt, metric, title))
    return 0


def _check(args: argparse.Namespace) -> int:
    from harness.check import check_image

    record = check_image(_competition(args), args.image, _client())
    if args.json:
        print(record.to_json())
    else:
        print(f"verdict: {record.verdict}")
        if record.message:
            print(f"why: {record.message}")
        for part, scores in record.scores.items():
            print(f"{part}: " + ", ".join(f"{k}={v:.5f}" for k, v in scores.items()))
    return 0 if record.verdict == "SCORED" else 1


def _images_build(args: argparse.Namespace) -> int:
    from harness.config import compose_config
    from harness.images import ImageBuildError, build_images
    from harness.paths import harness_home

    _client()
    cfg = compose_config("digits", args.overrides)
    try:
        built = build_images(cfg.images, harness_home(), log=lambda line: print(line, file=sys.stderr, flush=True))
    except ImageBuildError as exc:
        raise HarnessError(str(exc)) from None
    for tag, image_id in built.items():
        print(f"{tag} {image_id}")
    return 0


def _data_prepare(args: argparse.Namespace) -> int:
    competition = _competition(args)
    print(f"{competition.name}: data ready under {competition.paths.data} (hash {competition.data_sha256[:12]})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from harness.intake import pin_image
    from harness.ledger import Ledger

    args.competition = "digits"
    _images_build(args)
    competition = _competition(args)
    image = "harness/sample-submission:latest"
    pinned = pin_image(_client(), image)
    submission = Ledger(competition.paths.submissions, competition.name).add("sample", image, pinned.digest)
    print(f"submitted {image} as {submission.id} (team 'sample')", file=sys.stderr)
    return _round(args, competition)


if __name__ == "__main__":
    sys.exit(main())
