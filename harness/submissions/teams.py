"""The teams of a competition and their tokens, in the work directory's database (table ``teams``).

A team's **key** is its name under Unicode NFKC, case-folded, inner whitespace collapsed: "Team A",
"team  a" and "Ｔｅａｍ Ａ" are one team, so a lookalike is refused with the name it collides with.
Its **namespace** (``teams/<slug>``) is where it may push in the service's registry.

A token is ``hx_<team id>_<43 url-safe characters>``: 256 random bits. Only a salted SHA-256 of it
is stored, so the database never lets anyone act as a team. A slow hash (scrypt) protects secrets
people choose, which can be guessed; a token cannot, and its fast check is what lets the service
check every token before its failure limiter, so a valid token is never refused because a stranger
failed from the same address. Rows hashed with scrypt by earlier releases are still verified, and
rewritten as SHA-256 on their first success. Every answer for a token shaped like one costs one
hash, whether its team exists or not: the time of a refusal does not tell which team ids exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.submissions.ledger import Ledger, validate_team
from harness.util.clock import timestamp
from harness.util.errors import HarnessError

SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (
    id TEXT PRIMARY KEY,
    competition TEXT NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    namespace TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    UNIQUE (competition, key),
    UNIQUE (competition, namespace)
)
"""
COLUMNS = "id, competition, name, key, namespace, token_hash, created_at, revoked_at"
_DECOY_HASH = "sha256$" + "00" * 16 + "$" + "0" * 64  # no token hashes to it
TOKEN = re.compile(r"hx_(team-[0-9a-f]{12})_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Team:
    id: str
    competition: str
    name: str
    key: str
    namespace: str
    token_hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def view(self) -> dict:
        """What ``teams list`` shows: never the token or its hash."""
        return {
            "id": self.id,
            "name": self.name,
            "namespace": self.namespace,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def team_key(name: str) -> str:
    """The name as teams are told apart: NFKC, case-folded, inner whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def slug(key: str) -> str:
    """The key in ASCII lowercase letters, digits and single dashes ('' when it has none of those)."""
    return re.sub(r"[^a-z0-9]+", "-", key).strip("-")


def hash_token(token: str) -> str:
    salt = secrets.token_bytes(16)
    return f"sha256${salt.hex()}${hashlib.sha256(salt + token.encode()).hexdigest()}"


def token_matches(token: str, stored: str) -> bool:
    try:
        kind, *fields = stored.split("$")
        if kind == "sha256":
            salt, digest = fields
            computed = hashlib.sha256(bytes.fromhex(salt) + token.encode()).hexdigest()
        elif kind == "scrypt":  # a row of an earlier release
            n, r, p, salt, digest = fields
            computed = hashlib.scrypt(token.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32).hex()
        else:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(computed, digest)


class Teams:
    """One competition's teams in the work directory's database (``<home>/ledger.sqlite3``)."""

    def __init__(self, home: Path, competition: str) -> None:
        self.ledger = Ledger(home, competition)
        self.competition = competition
        with self.ledger.transaction(immediate=True) as con:
            con.execute(SCHEMA)

    def add(self, name: str, now: datetime | None = None) -> tuple[Team, str]:
        """A new team and its token (shown once, never stored); refused when its key is taken."""
        name = validate_team(name)
        key, team_id = team_key(name), f"team-{secrets.token_hex(6)}"
        token = _new_token(team_id)
        with self.ledger.transaction(immediate=True) as con:
            existing = self._find(con, "key = ?", key)
            if existing is not None:
                raise HarnessError(
                    f"the name {name!r} is the same team as {existing.name!r} ({existing.id}) once case, width and spaces are set aside; "
                    "choose another name"
                )
            wanted = slug(key)
            taken = wanted and self._find(con, "namespace = ?", f"teams/{wanted}") is not None
            namespace = f"teams/{wanted if wanted and not taken else team_id}"
            team = Team(team_id, self.competition, name, key, namespace, hash_token(token), timestamp(now or datetime.now(UTC)))
            con.execute(
                f"INSERT INTO teams ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (team.id, team.competition, team.name, team.key, team.namespace, team.token_hash, team.created_at, None),
            )
        return team, token

    def all(self) -> list[Team]:
        with self.ledger.transaction() as con:
            rows = con.execute(f"SELECT {COLUMNS} FROM teams WHERE competition = ? ORDER BY created_at, id", (self.competition,))
            return [Team(*row) for row in rows]

    def get(self, team: str) -> Team:
        """A team by its id or its name (any spelling of its key)."""
        with self.ledger.transaction() as con:
            found = self._find(con, "id = ?", team) or self._find(con, "key = ?", team_key(team))
        if found is None:
            raise HarnessError(f"no team {team!r} in {self.competition}; `harness teams list {self.competition}` names them")
        return found

    def rotate(self, team: str) -> tuple[Team, str]:
        """A new token for the team; the old one stops working at once."""
        found = self.get(team)
        if found.revoked:
            raise HarnessError(f"team {found.name!r} was revoked at {found.revoked_at}; add it again under another name")
        token = _new_token(found.id)
        with self.ledger.transaction(immediate=True) as con:
            con.execute("UPDATE teams SET token_hash = ? WHERE id = ?", (hash_token(token), found.id))
        return self.get(found.id), token

    def revoke(self, team: str, now: datetime | None = None) -> Team:
        """End the team's token; it can no longer call the service (its submissions stay)."""
        found = self.get(team)
        if not found.revoked:
            with self.ledger.transaction(immediate=True) as con:
                con.execute("UPDATE teams SET revoked_at = ? WHERE id = ?", (timestamp(now or datetime.now(UTC)), found.id))
        return self.get(found.id)

    def authenticate(self, token: str) -> Team | None:
        """The team whose current token this is; None for anything else (malformed, wrong, rotated
        away, revoked). One indexed read and one hash: cheap enough to check before any limiter."""
        match = TOKEN.fullmatch(token or "")
        if match is None:
            return None
        with self.ledger.transaction() as con:
            team = self._find(con, "id = ?", match.group(1))
        if team is None or team.revoked:
            token_matches(token, _DECOY_HASH)  # the same work as a wrong secret
            return None
        if not token_matches(token, team.token_hash):
            return None
        if not team.token_hash.startswith("sha256$"):
            with self.ledger.transaction(immediate=True) as con:  # only if no rotate came between
                con.execute(
                    "UPDATE teams SET token_hash = ? WHERE id = ? AND token_hash = ?", (hash_token(token), team.id, team.token_hash)
                )
        return team

    def _find(self, con: sqlite3.Connection, where: str, value: str) -> Team | None:
        row = con.execute(f"SELECT {COLUMNS} FROM teams WHERE competition = ? AND {where}", (self.competition, value)).fetchone()
        return Team(*row) if row else None


def _new_token(team_id: str) -> str:
    return f"hx_{team_id}_{secrets.token_urlsafe(32)}"
