"""The daily quota: refusal and its message, and INFRA_ERROR never charged (a real round, a real engine fault)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from test_resume import records
from test_round import harness
from test_round_faults import round_with_the_engine_cut

from harness.cli import main
from harness.submissions.ledger import EVALUATED, PENDING, Ledger
from harness.submissions.quota import QuotaExceeded, next_allowed

DIGEST = "sha256:" + "0" * 64
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_the_window_is_any_24_hours():
    times = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert next_allowed(times, 4, T0 + timedelta(hours=3)) is None
    assert next_allowed(times, 3, T0 + timedelta(hours=3)) == T0 + timedelta(hours=24)
    assert next_allowed(times, 2, T0 + timedelta(hours=3)) == T0 + timedelta(hours=25)
    assert next_allowed(times, 3, T0 + timedelta(hours=24, seconds=1)) is None


def test_refusal_says_when_the_next_submission_is_allowed(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    for minutes in (0, 30):
        ledger.add("A", "img", DIGEST, per_day=2, now=T0 + timedelta(minutes=minutes))
    ledger.add("B", "img", DIGEST, per_day=2, now=T0 + timedelta(minutes=45))  # another team's quota
    with pytest.raises(QuotaExceeded) as refused:
        ledger.add("A", "img", DIGEST, per_day=2, now=T0 + timedelta(hours=2, seconds=30))
    assert str(refused.value) == (
        "team 'A' has used its quota of 2 submission(s) in 24 hours; the next one is allowed at 2026-03-02 12:00:00 UTC "
        "(in 22 h 00 min). Submissions that failed on the organizer's side (INFRA_ERROR) do not count"
    )
    assert ledger.add("A", "img", DIGEST, per_day=2, now=T0 + timedelta(hours=24, milliseconds=1))


@pytest.mark.docker
def test_submit_refuses_over_quota(home, behave_image, capsys):
    image, quota = behave_image("constant"), "competition.quota.per_day=2"
    for _ in range(2):
        assert main(["submit", "digits", quota, "--team", "A", "--image", image]) == 0
    capsys.readouterr()
    assert main(["submit", "digits", quota, "--team", "A", "--image", image]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: team 'A' has used its quota of 2 submission(s) in 24 hours; the next one is allowed at ")
    assert " UTC (in 23 h 59 min)" in err or " UTC (in 24 h 00 min)" in err
    assert main(["submit", "digits", quota, "--team", "B", "--image", image]) == 0  # another team's quota


@pytest.mark.docker
@pytest.mark.slow
def test_a_round_whose_engine_fails_charges_nothing_until_a_real_verdict(home, behave_image, docker_client, tmp_path):
    """A real round, its engine cut mid-phase (through the socket proxy of test_round_faults), no
    retries: the submission stays pending and uncharged, its slot free for another; the next round,
    with the engine whole, gives it a verdict of its own and charges it."""
    quota, image = "competition.quota.per_day=1", behave_image("nap2")

    def submit(team: str = "A") -> subprocess.CompletedProcess:
        return harness(home, "submit", "digits", quota, "--team", team, "--image", image)

    first = submit().stdout.strip()
    assert submit().returncode == 2  # the quota of one is used
    no_smoke = "competition.smoke.enabled=false"  # the full phases only (tests/test_smoke.py cuts the engine in the smoke stage)
    done = round_with_the_engine_cut(home, docker_client, tmp_path, "runner.infra_retries=0", no_smoke)
    assert done.returncode == 0, done.stderr
    assert "INFRA_ERROR      1" in done.stderr and "left pending: 1" in done.stderr

    ledger = Ledger(home, "digits")
    failed = ledger.get(first)
    assert (failed.state, failed.infra_failures, failed.charged) == (PENDING, 1, False)
    second = submit()
    assert second.returncode == 0, second.stderr  # the slot the engine's failure took is free again
    assert submit().returncode == 2  # and the second submission holds it

    again = harness(home, "round", "digits", no_smoke)
    assert again.returncode == 0, again.stderr
    evaluated = ledger.get(first)
    assert evaluated.state == EVALUATED and evaluated.charged  # a verdict of its own: charged now
    assert {r["submission"]["id"] for r in records(home) if r["verdict"] == "SCORED"} == {first, second.stdout.strip()}
