"""``harness serve`` (the competition service), ``harness teams`` (who may submit through it) and
``harness service`` (pause or resume its intake and evaluation)."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, add_ids_command, add_json, load_competition, print_json
from harness.util.errors import HarnessError


def register(commands) -> None:
    serve = add_command(commands, "serve", _serve, "run the competition service: JSON API, pages, registry, evaluation loop")
    serve.add_argument("--host", help="address to listen on (default: service.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="the API's port (default: service.port)")
    serve.add_argument("--registry-port", type=int, help="the registry's port (default: service.registry_port)")

    teams = commands.add_parser("teams", help="the teams of a competition and their tokens").add_subparsers(
        dest="teams_command", required=True, metavar="ACTION"
    )
    for name, handler, help in (
        ("add", _add, "add a team; prints its token once"),
        ("rotate", _rotate, "give a team a new token (prints it once); the old one stops working"),
        ("revoke", _revoke, "end a team's token; its submissions stay"),
    ):
        add_json(add_ids_command(teams, name, handler, help, "TEAM", nargs="+"), "the team (and its token)")
    add_json(add_command(teams, "list", _list, "list the teams (never their tokens)"), "the teams")

    service = commands.add_parser("service", help="pause or resume the service's intake or evaluation").add_subparsers(
        dest="service_command", required=True, metavar="ACTION"
    )
    for name, handler, help in (
        ("pause", _pause, "pause intake (submissions refused with 503) and/or evaluation (no new round starts)"),
        ("resume", _resume, "resume intake and/or evaluation"),
        ("status", _status, "whether intake and evaluation are paused"),
    ):
        add_json(add_ids_command(service, name, handler, help, "[intake|evaluation]", nargs="*"), "intake's and evaluation's state")


def _serve(args: argparse.Namespace) -> int:
    from harness.service.serve import serve

    competition = load_competition(args.competition, args.overrides)
    return serve(competition, args.overrides, host=args.host, port=args.port, registry_port=args.registry_port)


def _teams(args: argparse.Namespace):
    from harness.competition.config import load_settings
    from harness.competition.core import Competition
    from harness.submissions.teams import Teams

    competition = Competition.load(load_settings(args.competition, args.overrides))
    return Teams(competition.home, competition.name)


def _one(args: argparse.Namespace) -> str:
    if len(args.ids) != 1:
        raise HarnessError(f"name one team (quote a name with spaces), got {len(args.ids)}: {' '.join(args.ids)}")
    return args.ids[0]


def _show(args: argparse.Namespace, team, token: str | None, said: str) -> int:
    if args.json:
        print_json({**team.view(), **({"token": token} if token else {})})
    else:
        print(said, file=sys.stderr)
        if token:
            print(token)
    return 0


def _add(args: argparse.Namespace) -> int:
    team, token = _teams(args).add(_one(args))
    return _show(args, team, token, f"team {team.name!r} is {team.id}, pushing to {team.namespace}; its token (shown once):")


def _rotate(args: argparse.Namespace) -> int:
    team, token = _teams(args).rotate(_one(args))
    return _show(args, team, token, f"team {team.name!r} ({team.id}) has a new token; the old one no longer works. Its token (shown once):")


def _revoke(args: argparse.Namespace) -> int:
    team = _teams(args).revoke(_one(args))
    return _show(args, team, None, f"team {team.name!r} ({team.id}) is revoked since {team.revoked_at}: its token no longer works")


def _list(args: argparse.Namespace) -> int:
    teams = [team.view() for team in _teams(args).all()]
    if args.json:
        print_json({"teams": teams})
    for team in [] if args.json else teams:
        revoked = f"  revoked {team['revoked_at']}" if team["revoked_at"] else ""
        print(f"{team['id']}  {team['name']}  {team['namespace']}  added {team['created_at']}{revoked}")
    return 0


def _paths(args: argparse.Namespace):
    from harness.competition.config import load_settings
    from harness.competition.core import Competition
    from harness.competition.paths import ServicePaths

    competition = Competition.load(load_settings(args.competition, args.overrides))
    return ServicePaths.of(competition.name, competition.home)


def _pause(args: argparse.Namespace) -> int:
    return _set(args, pause=True)


def _resume(args: argparse.Namespace) -> int:
    return _set(args, pause=False)


def _set(args: argparse.Namespace, pause: bool) -> int:
    from harness.service.control import PARTS, set_paused

    paths = _paths(args)
    set_paused(paths, args.ids or list(PARTS), pause)
    return _status(args, paths)


def _status(args: argparse.Namespace, paths=None) -> int:
    from harness.service.control import status

    state = status(paths or _paths(args))
    if args.json:
        print_json(state)
    else:
        print(f"{args.competition}: intake {state['intake']}, evaluation {state['evaluation']}")
    return 0
