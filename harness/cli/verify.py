"""``harness verify``: check the organizer's signature on evaluation records."""

from __future__ import annotations

import argparse
import json

from harness.cli.common import add_ids_command, add_json, load_competition, print_json
from harness.util.errors import HarnessError


def register(commands) -> None:
    verify = add_ids_command(
        commands,
        "verify",
        _verify,
        "check the organizer's signature (HMAC) on evaluation records, all of them or the given ones; exit 1 unless all verify",
        "RECORD",
        nargs="*",
    )
    add_json(verify, "each record's state")


def _verify(args: argparse.Namespace) -> int:
    from harness.records.record import latest_record
    from harness.records.signing import KEY_ENV, KEY_FILE_ENV, Check, check, signing_key

    key = signing_key()
    if key is None:
        raise HarnessError(f"no organizer key: set {KEY_ENV} or {KEY_FILE_ENV}")
    competition = load_competition(args.competition, args.overrides)
    directory = competition.paths.records
    paths = [latest_record(directory, item) or directory / f"{item}.json" for item in args.ids] or sorted(directory.glob("*.json"))
    states = {}
    for path in paths:
        try:
            states[path.stem] = check(json.loads(path.read_text(encoding="utf-8")), key).value
        except (OSError, ValueError) as exc:
            states[path.stem] = f"unreadable ({exc})"
    verified = sum(state == Check.VALID.value for state in states.values())
    if args.json:
        print_json({"competition": competition.name, "records": states, "verified": verified, "total": len(paths)})
    else:
        for name, state in states.items():
            print(f"{name}: {state}")
        print(f"{verified} of {len(paths)} record(s) verify")
    return 0 if verified == len(paths) else 1
