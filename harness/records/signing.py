"""Tamper evidence an outsider can check: the organizer signs every record with an Ed25519 private
key and publishes the public key; anyone holding the public key checks a record, nobody without
the private key can sign one.

Keys (never written into a record or a log; containers get only the contract's environment):

- ``HARNESS_SIGNING_KEY_FILE`` names a PEM file holding the organizer's Ed25519 private key
  (``harness keys generate DIR`` makes one); ``HARNESS_SIGNING_KEY`` may hold the PEM text itself.
- ``HARNESS_VERIFY_KEY``: the published public key (a PEM file's path, or the PEM text); all that
  ``harness verify`` needs (``--public-key FILE`` says the same).
- Legacy: records signed before with an HMAC-SHA256 secret keep verifying with that secret, given
  as ``HARNESS_HMAC_KEY`` or ``HARNESS_HMAC_KEY_FILE``. A signing key that is not PEM is such a
  secret too: it still signs (``hmac-sha256``), but only its holder can check those signatures.

A record carries ``signature: {algorithm, key_id, value}`` over its canonical JSON (sorted keys,
no whitespace, the signature left out); ``key_id`` is a fingerprint that tells which key signed it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.util.errors import HarnessError

KEY_ENV = "HARNESS_SIGNING_KEY"
KEY_FILE_ENV = "HARNESS_SIGNING_KEY_FILE"
VERIFY_KEY_ENV = "HARNESS_VERIFY_KEY"
HMAC_KEY_ENV = "HARNESS_HMAC_KEY"
HMAC_KEY_FILE_ENV = "HARNESS_HMAC_KEY_FILE"
ED25519 = "ed25519"
HMAC_SHA256 = "hmac-sha256"
ALGORITHM = ED25519  # what new records are signed with
ALGORITHMS = (ED25519, HMAC_SHA256)

# A key as the functions here take it: an Ed25519 key pair or public key, or a legacy HMAC secret (bytes).
Key = Ed25519PrivateKey | Ed25519PublicKey | bytes


class Check(Enum):
    VALID = "valid"
    TAMPERED = "tampered"  # signed with this key, and changed since
    OTHER_KEY = "signed with another key"
    UNSIGNED = "unsigned"


def signing_key() -> Ed25519PrivateKey | bytes | None:
    """The organizer's signing key (Ed25519; an HMAC secret for a legacy setup), or None when none is configured."""
    value = os.environ.get(KEY_ENV)
    if value:
        return _private_key(value.encode(), KEY_ENV)
    path = os.environ.get(KEY_FILE_ENV)
    if not path:
        return None
    return _private_key(_read_key_file(path, KEY_FILE_ENV), f"{KEY_FILE_ENV}={path}")


def verification_keys(public_keys: Iterable[str | Path] = ()) -> list[Key]:
    """Every key that can check a record here: ``public_keys`` (PEM files), ``HARNESS_VERIFY_KEY``,
    the signing key's public half, and the legacy HMAC secret; empty when none is configured."""
    keys: list[Key] = [load_public_key(_read_key_file(str(p), "--public-key"), f"--public-key {p}") for p in public_keys]
    if value := os.environ.get(VERIFY_KEY_ENV):
        text = value.encode() if value.lstrip().startswith("-----BEGIN") else _read_key_file(value, VERIFY_KEY_ENV)
        keys.append(load_public_key(text, VERIFY_KEY_ENV))
    signer = signing_key()
    if signer is not None:
        keys.append(signer.public_key() if isinstance(signer, Ed25519PrivateKey) else signer)
    if value := os.environ.get(HMAC_KEY_ENV):
        keys.append(value.encode())
    elif path := os.environ.get(HMAC_KEY_FILE_ENV):
        keys.append(_read_key_file(path, HMAC_KEY_FILE_ENV))
    return keys


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes, where: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its PEM text; a HarnessError naming ``where`` otherwise."""
    if not data.strip():
        raise HarnessError(f"{where}: no public key there (give the PEM file `harness keys generate` wrote)")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise HarnessError(f"{where}: not a PEM public key (give the .pub.pem file `harness keys generate` wrote)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise HarnessError(f"{where}: a {type(key).__name__}, not an Ed25519 public key")
    return key


def key_id(key: Key) -> str:
    """A fingerprint of the key (its public half for Ed25519), never the key."""
    if isinstance(key, bytes):
        return hashlib.sha256(b"harness-key-id\0" + key).hexdigest()[:16]
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(b"harness-key-id\0ed25519\0" + raw).hexdigest()[:16]


def sign(data: dict[str, Any], key: Ed25519PrivateKey | bytes) -> dict[str, str]:
    """The ``signature`` of a record (whatever signature it had is left out of what is signed)."""
    if isinstance(key, bytes):
        return {"algorithm": HMAC_SHA256, "key_id": key_id(key), "value": _mac(data, key)}
    return {"algorithm": ED25519, "key_id": key_id(key), "value": key.sign(canonical(data)).hex()}


def check(data: Any, *keys: Key) -> Check:
    """How ``data``'s signature stands against ``keys`` (any of them may have signed it)."""
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict) or signature.get("algorithm") not in ALGORITHMS:
        return Check.UNSIGNED
    algorithm, value = signature["algorithm"], str(signature.get("value"))
    for key in keys:
        if (algorithm == HMAC_SHA256) != isinstance(key, bytes) or signature.get("key_id") != key_id(key):
            continue
        try:
            if isinstance(key, bytes):
                return Check.VALID if hmac.compare_digest(value, _mac(data, key)) else Check.TAMPERED
            public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
            public.verify(bytes.fromhex(value), canonical(data))
            return Check.VALID
        except (InvalidSignature, ValueError, TypeError):  # a forged value, or a body that cannot be canonical (NaN)
            return Check.TAMPERED
    return Check.OTHER_KEY


def canonical(data: dict[str, Any]) -> bytes:
    """What is signed: the record's JSON with sorted keys and no whitespace, the signature left out."""
    body = {k: v for k, v in data.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _mac(data: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(data), hashlib.sha256).hexdigest()


def _private_key(data: bytes, where: str) -> Ed25519PrivateKey | bytes:
    """A PEM Ed25519 private key, or (legacy) any other text as an HMAC secret."""
    if b"-----BEGIN" not in data:
        return data.strip()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if "encrypted" in str(exc).lower() or isinstance(exc, TypeError) else "it cannot be read as PEM"
        raise HarnessError(f"{where}: not a usable private key ({reason}); `harness keys generate DIR` makes one") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise HarnessError(f"{where}: a {type(key).__name__}, not an Ed25519 private key; `harness keys generate DIR` makes one")
    return key


def _read_key_file(path: str, variable: str) -> bytes:
    where = f"{variable} {path}" if variable.startswith("-") else f"{variable}={path}"
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise HarnessError(f"{where}: the key cannot be read ({exc.strerror})") from None
    if not key:
        raise HarnessError(f"{where}: the key file is empty")
    return key
