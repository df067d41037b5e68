"""Registry bearer tokens: compact JWTs signed ES256, as the registry's token authentication checks them.

Written with ``cryptography`` alone (already a core dependency): a JWT is three base64url parts,
and the one detail that matters, the raw 64-byte ``r||s`` signature libtrust verifies, is explicit here."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from harness.registry.keys import IssuerKey
from harness.registry.scopes import Access, grant, parse_scopes
from harness.util.clock import timestamp

ISSUER = "harness"
# A revoked or rotated team keeps pushing and pulling until its registry token expires: the shortest
# lifetime Docker's clients honour (they read anything shorter as 60 s, and fetch a new token as it runs out).
TOKEN_TTL_S = 60
_P256_BYTES = 32


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_part(value: dict[str, object]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def issue_token(
    key: IssuerKey, *, subject: str, audience: str, access: list[Access], ttl_s: int = TOKEN_TTL_S, now: datetime | None = None
) -> str:
    """A JWT for ``subject`` valid ``ttl_s`` seconds from ``now`` (default: the current time) for
    the registry whose service name is ``audience``, granting ``access``."""
    moment = now or datetime.now(UTC)
    issued = int(moment.timestamp())
    header = {"typ": "JWT", "alg": "ES256", "kid": key.kid}
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_urlsafe(16),
        "access": [entry.claim() for entry in access],
    }
    signing_input = f"{_json_part(header)}.{_json_part(claims)}"
    r, s = decode_dss_signature(key.private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return f"{signing_input}.{_b64url(signature)}"


def token_answer(key: IssuerKey, *, service: str, scopes: list[str], namespace: str | None, subject: str) -> dict[str, object]:
    """The token endpoint's JSON body for an authenticated caller: ``scopes`` (the ``scope`` query
    values) granted for ``namespace`` (a team's, or ``None`` for the organizer's workers), audience
    ``service`` (the registry's service name; the endpoint refuses a request naming another)."""
    now = datetime.now(UTC)
    token = issue_token(key, subject=subject, audience=service, access=grant(parse_scopes(scopes), namespace), now=now)
    return {"token": token, "access_token": token, "expires_in": TOKEN_TTL_S, "issued_at": timestamp(now)}
