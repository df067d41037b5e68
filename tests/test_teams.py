"""Teams and their tokens: the real `harness teams` command on a real SQLite work directory."""

from __future__ import annotations

import hashlib
import json

from harness.submissions.teams import Teams, team_key
from tests.service_helpers import harness


def test_add_prints_the_token_once_and_list_never_shows_it(tmp_path):
    added = harness(tmp_path, "teams", "add", "digits", "Team A")
    token = added.stdout.strip()
    assert token.startswith("hx_team-") and token not in added.stderr and "teams/team-a" in added.stderr
    listed = harness(tmp_path, "teams", "list", "digits", "--json")
    (team,) = json.loads(listed.stdout)["teams"]
    assert team["name"] == "Team A" and team["namespace"] == "teams/team-a" and team["id"] in token
    plain = harness(tmp_path, "teams", "list", "digits").stdout
    secret = token.split("_", 2)[2]  # hx_<team id>_<secret>: the secret may hold "_" too
    for text in (listed.stdout, plain):
        assert token not in text and "scrypt" not in text and secret not in text
    assert token.encode() not in (tmp_path / "ledger.sqlite3").read_bytes()


def test_lookalike_names_are_one_team(tmp_path):
    harness(tmp_path, "teams", "add", "digits", "Team A")
    for lookalike in ("team  a", "Ｔｅａｍ Ａ", " TEAM A "):
        refused = harness(tmp_path, "teams", "add", "digits", lookalike, check=False)
        assert refused.returncode == 2 and "is the same team as 'Team A'" in refused.stderr, refused.stderr
    assert team_key("Ｔｅａｍ\u3000 Ａ") == "team a"


def test_rotate_and_revoke_take_effect_at_once(tmp_path):
    first = json.loads(harness(tmp_path, "teams", "add", "digits", "Rotators", "--json").stdout)
    teams = Teams(tmp_path, "digits")  # one process, its verification cache warm, as the service's
    assert teams.authenticate(first["token"]).id == first["id"]
    rotated = json.loads(harness(tmp_path, "teams", "rotate", "digits", "rotators", "--json").stdout)
    assert rotated["token"] != first["token"]
    assert teams.authenticate(first["token"]) is None
    assert teams.authenticate(rotated["token"]).name == "Rotators"
    harness(tmp_path, "teams", "revoke", "digits", rotated["id"])
    assert teams.authenticate(rotated["token"]) is None
    assert json.loads(harness(tmp_path, "teams", "list", "digits", "--json").stdout)["teams"][0]["revoked_at"]


def test_namespaces_are_slugs_or_the_team_id(tmp_path):
    teams = Teams(tmp_path, "digits")
    assert teams.add("Café Noir!")[0].namespace == "teams/caf-noir"
    taken = teams.add("caf noir")[0]
    assert taken.namespace == f"teams/{taken.id}"
    assert (odd := teams.add("東京")[0]).namespace == f"teams/{odd.id}"


def counting(monkeypatch, name: str) -> list[bytes]:
    """Every call of ``hashlib.<name>`` from here on, by its first argument (the module calls it by attribute)."""
    calls: list[bytes] = []
    real = getattr(hashlib, name)

    def counted(data=b"", *args, **kwargs):
        calls.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(hashlib, name, counted)
    return calls


def test_tokens_are_salted_sha256_checked_in_one_hash_and_malformed_ones_in_none(tmp_path, monkeypatch):
    """A token is 256 random bits: a salted SHA-256 stores it (never the token), a check is one
    indexed read and one hash (no scrypt), cheap enough to come before the failure limiter."""
    teams = Teams(tmp_path, "digits")
    team, token = teams.add("Speedy")
    assert team.token_hash.startswith("sha256$") and token not in team.token_hash
    assert token.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("ledger.sqlite3*"))
    hashed, slow = counting(monkeypatch, "sha256"), counting(monkeypatch, "scrypt")
    for bad in ("", "hx_", "Bearer x", token + "x", token[:-1], "x" * 10_000):
        assert teams.authenticate(bad) is None
    assert hashed == []  # not shaped like a token: no hash at all
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert teams.authenticate(wrong) is None and len(hashed) == 1
    for _ in range(3):
        assert teams.authenticate(token) == team
    assert len(hashed) == 4 and slow == []


def test_unknown_and_revoked_team_ids_cost_one_hash_like_a_wrong_secret(tmp_path, monkeypatch):
    """A token shaped right for a team id that does not exist, or is revoked, costs the one hash a
    wrong secret costs: the time of a refusal does not tell which team ids exist."""
    teams = Teams(tmp_path, "digits")
    team, token = teams.add("Known")
    gone, gone_token = teams.add("Gone")
    teams.revoke(gone.id)
    hashed = counting(monkeypatch, "sha256")
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for refused in (wrong, "hx_team-000000000000_" + "a" * 43, gone_token):
        before = len(hashed)
        assert teams.authenticate(refused) is None
        assert len(hashed) == before + 1, refused


def test_a_scrypt_row_of_an_earlier_release_is_verified_once_then_rewritten(tmp_path):
    teams = Teams(tmp_path, "digits")
    team, token = teams.add("Veteran")
    salt = bytes(range(16))
    digest = hashlib.scrypt(token.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32).hex()
    with teams.ledger.transaction(immediate=True) as con:
        con.execute("UPDATE teams SET token_hash = ? WHERE id = ?", (f"scrypt$16384$8$1${salt.hex()}${digest}", team.id))
    assert teams.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert teams.get(team.id).token_hash.startswith("scrypt$")  # a failure rewrites nothing
    assert teams.authenticate(token).id == team.id
    assert teams.get(team.id).token_hash.startswith("sha256$") and teams.authenticate(token).id == team.id
