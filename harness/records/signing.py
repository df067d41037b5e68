"""Tamper evidence: an organizer's HMAC-SHA256 over a record's canonical JSON.

The key comes from ``HARNESS_SIGNING_KEY`` or from the file named by ``HARNESS_SIGNING_KEY_FILE``;
it is never written into a record or a log, and containers get only the contract's environment.
A record carries ``signature: {algorithm, key_id, value}``; ``key_id`` is a fingerprint that tells
which key signed it, not the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

from harness.util.errors import HarnessError

KEY_ENV = "HARNESS_SIGNING_KEY"
KEY_FILE_ENV = "HARNESS_SIGNING_KEY_FILE"
ALGORITHM = "hmac-sha256"


class Check(Enum):
    VALID = "valid"
    TAMPERED = "tampered"  # signed with this key, and changed since
    OTHER_KEY = "signed with another key"
    UNSIGNED = "unsigned"


def signing_key() -> bytes | None:
    """The organizer's key, or None when none is configured."""
    value = os.environ.get(KEY_ENV)
    if value:
        return value.encode()
    path = os.environ.get(KEY_FILE_ENV)
    if not path:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise HarnessError(f"{KEY_FILE_ENV}={path}: the signing key cannot be read ({exc.strerror})") from None
    if not key:
        raise HarnessError(f"{KEY_FILE_ENV}={path}: the signing key file is empty")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"harness-key-id\0" + key).hexdigest()[:16]


def sign(data: dict[str, Any], key: bytes) -> dict[str, str]:
    """The ``signature`` of a record (whatever signature it had is left out of what is signed)."""
    return {"algorithm": ALGORITHM, "key_id": key_id(key), "value": _mac(data, key)}


def check(data: dict[str, Any], key: bytes) -> Check:
    signature = data.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        return Check.UNSIGNED
    if signature.get("key_id") != key_id(key):
        return Check.OTHER_KEY
    return Check.VALID if hmac.compare_digest(str(signature.get("value")), _mac(data, key)) else Check.TAMPERED


def _mac(data: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in data.items() if k != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
