"""The daily quota: refusal and its message, and INFRA_ERROR never charged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.cli import main
from harness.submissions.ledger import EVALUATED, PENDING, RUNNING, Ledger
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


def fail_on_infrastructure(ledger: Ledger, submission) -> None:
    """What a round does with a submission whose evaluation ended INFRA_ERROR (harness/round.py)."""
    submission.evaluations.append(f"ev-infra-{len(submission.evaluations)}")
    submission.infra_failures += 1
    submission.state = PENDING
    ledger.save(submission)


def test_infra_error_is_not_charged_until_a_real_verdict(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    first = ledger.add("A", "img", DIGEST, per_day=1, now=T0)
    with pytest.raises(QuotaExceeded):
        ledger.add("A", "img", DIGEST, per_day=1, now=T0 + timedelta(minutes=1))
    fail_on_infrastructure(ledger, first)
    assert not ledger.get(first.id).charged
    second = ledger.add("A", "img", DIGEST, per_day=1, now=T0 + timedelta(minutes=2))  # the slot is free again
    first.state = RUNNING  # the retry in the next round
    ledger.save(first)
    assert not ledger.get(first.id).charged
    first.state = EVALUATED  # the retry ended with a verdict of the participant's own (e.g. SCORED)
    ledger.save(first)
    assert ledger.get(first.id).charged and ledger.get(second.id).charged


@pytest.mark.docker
def test_submit_refuses_over_quota_and_not_after_an_infra_error(home, behave_image, capsys):
    image, quota = behave_image("constant"), "competition.quota.per_day=2"
    for _ in range(2):
        assert main(["submit", "digits", quota, "--team", "A", "--image", image]) == 0
    first = capsys.readouterr().out.split()[0]
    assert main(["submit", "digits", quota, "--team", "A", "--image", image]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: team 'A' has used its quota of 2 submission(s) in 24 hours; the next one is allowed at ")
    assert " UTC (in 23 h 59 min)" in err or " UTC (in 24 h 00 min)" in err
    ledger = Ledger(home, "digits")
    fail_on_infrastructure(ledger, ledger.get(first))
    assert main(["submit", "digits", quota, "--team", "A", "--image", image]) == 0
