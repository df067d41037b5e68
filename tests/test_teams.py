"""Teams and their tokens: the real `harness teams` command on a real SQLite work directory."""

from __future__ import annotations

import hashlib
import json
import time

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
    for text in (listed.stdout, plain):
        assert token not in text and "scrypt" not in text and token.rsplit("_", 1)[1] not in text
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


def test_malformed_tokens_never_reach_scrypt_and_wrong_ones_fail(tmp_path):
    teams = Teams(tmp_path, "digits")
    team, token = teams.add("Speedy")
    started = time.perf_counter()
    for bad in ("", "hx_", "Bearer x", token + "x", token[:-1], "hx_team-000000000000_" + "a" * 43, "x" * 10_000):
        assert teams.authenticate(bad) is None
    assert time.perf_counter() - started < 0.05  # no scrypt for any of them (one takes ~50 ms)
    assert teams.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None  # right shape, wrong secret
    started = time.perf_counter()
    for _ in range(100):
        assert teams.authenticate(token) == team
    assert time.perf_counter() - started < 1.0  # verified once, then remembered


def test_namespaces_are_slugs_or_the_team_id(tmp_path):
    teams = Teams(tmp_path, "digits")
    assert teams.add("Café Noir!")[0].namespace == "teams/caf-noir"
    taken = teams.add("caf noir")[0]
    assert taken.namespace == f"teams/{taken.id}"
    assert (odd := teams.add("東京")[0]).namespace == f"teams/{odd.id}"


def test_unknown_and_revoked_team_ids_cost_one_scrypt_like_a_wrong_secret(tmp_path, monkeypatch):
    """A token shaped right for a team id that does not exist, or is revoked, takes one scrypt of the
    same cost as a known team's wrong secret: the time of a refusal does not tell which ids exist."""
    teams = Teams(tmp_path, "digits")
    team, token = teams.add("Known")
    gone, gone_token = teams.add("Gone")
    teams.revoke(gone.id)
    costs: list[tuple[int, int, int]] = []
    real_scrypt = hashlib.scrypt

    def counted_scrypt(password, *, salt, n, r, p, dklen=64, **kwargs):
        costs.append((n, r, p))
        return real_scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen, **kwargs)

    teams.authenticate("hx_team-000000000000_" + "a" * 43)  # the decoy hash is made once, before counting
    monkeypatch.setattr(hashlib, "scrypt", counted_scrypt)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert teams.authenticate(wrong) is None
    assert teams.authenticate("hx_team-000000000000_" + "a" * 43) is None
    assert teams.authenticate(gone_token) is None
    assert len(costs) == 3 and len(set(costs)) == 1, costs
