"""``harness verify``: check the organizer's signature on evaluation records, with the published
public key alone (``--public-key FILE`` or ``HARNESS_VERIFY_KEY``), or the organizer's own keys."""

from __future__ import annotations

import argparse

from harness.cli.common import add_ids_command, add_json, load_competition, print_json
from harness.util.errors import HarnessError


def register(commands) -> None:
    verify = add_ids_command(
        commands,
        "verify",
        _verify,
        "check the organizer's signature (Ed25519; HMAC on older records) on evaluation records, all of them or the given ones; "
        "exit 1 unless all verify",
        "RECORD",
        nargs="*",
    )
    verify.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="the organizer's published public key (PEM; repeatable); also HARNESS_VERIFY_KEY",
    )
    add_json(verify, "each record's state")


def _verify(args: argparse.Namespace) -> int:
    from harness.records.record import RecordError, latest_record, read_record
    from harness.records.signing import HMAC_KEY_ENV, KEY_FILE_ENV, VERIFY_KEY_ENV, check, verification_keys

    keys = verification_keys(args.public_key)
    if not keys:
        raise HarnessError(
            f"no key to verify with: give the organizer's public key (--public-key FILE or {VERIFY_KEY_ENV}), "
            f"or set {KEY_FILE_ENV} (the organizer's key) or {HMAC_KEY_ENV} (records signed with HMAC)"
        )
    competition = load_competition(args.competition, args.overrides)
    directory = competition.paths.records
    paths = [latest_record(directory, item, warn=lambda _: None) or directory / f"{item}.json" for item in args.ids]
    paths = paths or sorted(directory.glob("*.json"))
    states = {}
    for path in paths:
        try:
            states[path.stem] = check(read_record(path), *keys).value
        except RecordError as exc:
            states[path.stem] = f"unreadable ({exc})"
    verified = sum(state == "valid" for state in states.values())
    if args.json:
        print_json({"competition": competition.name, "records": states, "verified": verified, "total": len(paths)})
    else:
        for name, state in states.items():
            print(f"{name}: {state}")
        print(f"{verified} of {len(paths)} record(s) verify")
    return 0 if verified == len(paths) else 1
