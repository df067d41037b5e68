"""``harness keys generate DIR``: the organizer's Ed25519 key pair for signing records."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.cli.common import add_command, add_json, print_json
from harness.util.errors import HarnessError

PRIVATE_NAME, PUBLIC_NAME = "signing-key.pem", "signing-key.pub.pem"


def register(commands) -> None:
    keys = commands.add_parser("keys", help="the organizer's signing keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    generate = add_command(
        keys,
        "generate",
        _generate,
        f"make an Ed25519 key pair in DIR ({PRIVATE_NAME}, private, mode 0600; {PUBLIC_NAME}, to publish); print the public key",
        competition=False,
    )
    generate.add_argument(
        "directory", type=Path, metavar="DIR", help="where to write the key pair (made if missing; existing keys are kept)"
    )
    add_json(generate, "the key files, the public key and its key id")


def generate(directory: Path) -> dict[str, str]:
    """Write a new key pair in ``directory``; refused when a key is there already (never overwritten)."""
    from harness.records.signing import generate_key, key_id, private_pem, public_pem

    private, public = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise HarnessError(f"{path} exists: a signing key is never overwritten (choose another DIR, or remove it knowingly)")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = generate_key()
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem(key))
        public.write_bytes(public_pem(key))
    except OSError as exc:
        raise HarnessError(f"{directory}: the key pair cannot be written ({exc.strerror})") from None
    return {"private_key": str(private), "public_key": str(public), "public_key_pem": public_pem(key).decode(), "key_id": key_id(key)}


def _generate(args: argparse.Namespace) -> int:
    from harness.records.signing import KEY_FILE_ENV, VERIFY_KEY_ENV

    made = generate(args.directory)
    print(
        f"key {made['key_id']}: sign with {KEY_FILE_ENV}={made['private_key']} (keep it secret); "
        f"publish {made['public_key']}: `harness verify COMPETITION --public-key FILE` (or {VERIFY_KEY_ENV}=FILE) checks records with it",
        file=sys.stderr,
    )
    if args.json:
        print_json(made)
    else:
        print(made["public_key_pem"], end="")
    return 0
