"""What every bundled data builder shares: the organizer's secret, the ids and orders keyed by it,
the keyed public/private assignment, and writing a competition's data whole.

The secret is 32 random bytes drawn once per competition (``hidden/secret``, mode 0600, in the
0700 ``hidden/`` beside the labels; never mounted, never in a kit). Everything a participant could
otherwise work out is a keyed hash (HMAC-SHA256) of it, each under a label of its own:

- ``opaque_id``: an id (12 hex characters) of a row's key (a row number, the organizer's own id);
- ``keyed_order``: the order of the rows in every table (not the ids' order);
- ``split_of`` / ``public_ids``: whether a test id counts on the public or the private board.

Given the same secret and the same input, a builder writes the same bytes. ``building`` writes a
competition in a temporary directory beside its final place and renames ``data/`` and ``hidden/``
into it; the marker ``.prepared`` comes last, so a crash leaves no half competition that looks whole.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARKER = ".prepared"
SECRET = "secret"  # under hidden/, beside the labels
SECRET_BYTES = 32
ID_CHARS = 12  # hex characters of an id: 48 bits, checked unique


def is_prepared(root: Path) -> bool:
    return (Path(root) / MARKER).is_file()


def read_marker(root: Path) -> dict[str, Any]:
    """The marker's content ({} when there is none or it cannot be read)."""
    try:
        marker = json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def keyed(secret: bytes, label: str, value: object) -> bytes:
    return hmac.new(secret, f"{label}:{value}".encode(), hashlib.sha256).digest()


def opaque_id(secret: bytes, key: object) -> str:
    """The id of the row ``key`` names: a keyed hash, meaningless without the secret."""
    return keyed(secret, "id", key).hex()[:ID_CHARS]


def keyed_order(secret: bytes, ids: Iterable[str]) -> list[str]:
    """``ids`` in a keyed-random order (not the ids' own order)."""
    return sorted(ids, key=lambda i: keyed(secret, "order", i))


def _public_rank(secret: bytes, item_id: str) -> float:
    h = keyed(secret, "split", item_id)
    return int.from_bytes(h[:8], "big") / 2**64


def split_of(secret: bytes, item_id: str, public_fraction: float = 0.5) -> str:
    """``public`` or ``private``, fixed by a keyed hash of the id (its own label, not the id's)."""
    return "public" if _public_rank(secret, item_id) < public_fraction else "private"


def public_ids(secret: bytes, ids: Iterable[str], public_fraction: float) -> set[str]:
    """The ids on the public board: the same keyed hash as ``split_of``, but ranked, so that exactly
    ``public_fraction`` of them (rounded; with two ids or more, at least one on each board) are public."""
    ranked = sorted(ids, key=lambda i: _public_rank(secret, i))
    want = round(len(ranked) * public_fraction)
    if len(ranked) >= 2:
        want = max(1, min(len(ranked) - 1, want))
    return set(ranked[:want])


def read_secret(root: Path) -> bytes | None:
    path = Path(root) / "hidden" / SECRET
    return path.read_bytes() if path.is_file() else None


def the_secret(root: Path, secret: bytes | None = None) -> bytes:
    """``secret`` if given, else the one a previous (or interrupted) build left in ``hidden/``, else
    32 fresh random bytes."""
    return secret or read_secret(root) or secrets.token_bytes(SECRET_BYTES)


def unique_ids(secret: bytes, keys: Iterable[object]) -> dict[object, str]:
    """Each key's opaque id; refused (a new secret is the fix) in the unlikely case two collide."""
    ids = {key: opaque_id(secret, key) for key in keys}
    if len(set(ids.values())) != len(ids):
        raise RuntimeError("two ids collide: build again with another secret")
    return ids


@contextmanager
def building(root: Path, secret: bytes, marker: dict[str, Any]) -> Iterator[Path]:
    """A temporary directory to write ``data/`` and ``hidden/`` into (``hidden/`` already made, mode
    0700); when the block ends without an error, the secret is written into ``hidden/``, the data
    made world-readable (containers run as another uid), both renamed into ``root`` and the marker
    (``marker`` plus the number of files) written last."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-", dir=root))
    try:
        hidden = tmp / "hidden"
        hidden.mkdir(mode=0o700)
        hidden.chmod(0o700)
        yield tmp
        key = hidden / SECRET
        key.touch(mode=0o600)
        key.chmod(0o600)
        key.write_bytes(secret)
        count = 0
        for dirpath, _dirnames, filenames in os.walk(tmp / "data"):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
            count += len(filenames)
        count += sum(len(filenames) for _, _, filenames in os.walk(hidden))
        for name in ("data", "hidden"):  # leftovers of a crash between the renames
            if (root / name).exists():
                shutil.rmtree(root / name)
            os.rename(tmp / name, root / name)
        path = tmp / MARKER
        path.write_text(json.dumps({**marker, "files": count}) + "\n")
        os.replace(path, root / MARKER)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
