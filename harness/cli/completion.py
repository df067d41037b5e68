"""``harness completion``: the shell completion script (shtab), generated from the parser itself."""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "tcsh")
PATHS = {"output": "file", "folder": "directory", "config_dirs": "directory", "command_config_dirs": "directory"}


def register(commands) -> None:
    about = "print the shell completion script, e.g. `harness completion bash > ~/.local/share/bash-completion/completions/harness`"
    completion = commands.add_parser("completion", help=about, description=about)
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    import shtab

    from harness.cli import build_parser

    parser = build_parser()
    kinds = {"file": shtab.FILE, "directory": shtab.DIRECTORY}
    for action in _actions(parser):
        if action.dest in PATHS:
            action.complete = kinds[PATHS[action.dest]]  # type: ignore[attr-defined]
    print(shtab.complete(parser, shell=args.shell), end="")
    return 0


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _actions(sub)
