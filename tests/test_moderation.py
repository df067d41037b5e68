"""The organizer can always end a competition: a submission is withdrawn (its team's request) or
disqualified (the organizer's decision) with a reason, kept in the ledger and in its records; a
round never evaluates it again, the leaderboard drops a disqualified one, finalize no longer waits."""

from __future__ import annotations

import json

import pytest
from test_round import harness, submit

from harness.records.record import load_record
from harness.submissions.ledger import DISQUALIFIED, EVALUATED, PENDING, RUNNING, WITHDRAWN, Ledger
from harness.util.errors import HarnessError

DIGEST = "sha256:" + "0" * 64


def test_the_ledger_keeps_state_reason_and_time_and_a_round_cannot_undo_them(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    stuck, scored, racing = (ledger.add(team, "img", DIGEST) for team in ("A", "B", "C"))
    stuck.infra_failures = 3
    ledger.save(stuck)
    scored.state = EVALUATED
    ledger.save(scored)
    ledger.select("B", [scored.id], limit=2, scored={scored.id})

    with pytest.raises(HarnessError, match="give a reason"):
        ledger.moderate(stuck.id, WITHDRAWN, "  ")
    with pytest.raises(HarnessError, match="evaluated already and its verdict stands.*harness disqualify digits"):
        ledger.moderate(scored.id, WITHDRAWN, "we changed our mind")
    withdrawn = ledger.moderate(stuck.id, WITHDRAWN, "needs a GPU the organizer lacks")
    assert (withdrawn.state, withdrawn.moderation_reason) == (WITHDRAWN, "needs a GPU the organizer lacks") and withdrawn.moderated_at
    assert not withdrawn.charged  # infrastructure failures only: never charged
    with pytest.raises(HarnessError, match=f"{stuck.id} was withdrawn at .* \\(needs a GPU the organizer lacks\\); it stays so"):
        ledger.moderate(stuck.id, DISQUALIFIED, "again")

    ledger.moderate(scored.id, DISQUALIFIED, "trained on the test set")
    assert ledger.selections() == {}  # dropped from the final selection
    with pytest.raises(HarnessError, match="was disqualified; only submissions still in the competition can be selected"):
        ledger.select("B", [scored.id], limit=2, scored={scored.id})

    racing.state = RUNNING  # a round runs it ...
    ledger.save(racing)
    ledger.moderate(racing.id, WITHDRAWN, "the team asked")  # ... when the team withdraws it
    racing.state, racing.evaluations = EVALUATED, ["ev-late"]  # the round ends and saves what it knows
    ledger.save(racing)
    assert (ledger.get(racing.id).state, ledger.get(racing.id).evaluations) == (WITHDRAWN, ["ev-late"])

    assert ledger.pending() == []
    assert ledger.finalize()


@pytest.mark.docker
@pytest.mark.slow
def test_disqualify_and_withdraw_through_the_command_line_after_a_real_round(home, behave_image):
    alpha = submit(home, "alpha", behave_image("constant"))
    beta = submit(home, "beta", behave_image("constant"))
    done = harness(home, "round", "digits")
    assert done.returncode == 0, done.stderr
    records = home / "competitions/digits/records"
    before = {json.loads(p.read_text())["submission"]["id"]: json.loads(p.read_text()) for p in records.glob("*.json")}
    assert before[alpha]["verdict"] == "SCORED" and before[alpha]["scores"]["public"]

    refused = harness(home, "disqualify", "digits", alpha)
    assert refused.returncode == 2 and "--reason" in refused.stderr
    done = harness(home, "disqualify", "digits", alpha, "--reason", "shared its model with team beta", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["state"] == "disqualified" and out["records_noted"] == [before[alpha]["evaluation_id"]]

    record = load_record(records / f"{before[alpha]['evaluation_id']}.json")  # still a valid record
    assert record.verdict == "SCORED" and record.scores == {}
    assert record.message.startswith("disqualified by the organizer at ") and record.message.endswith(": shared its model with team beta")
    (entry,) = record.history
    assert entry["reason"] == "disqualified: shared its model with team beta" and entry["scores"] == before[alpha]["scores"]

    board = json.loads(harness(home, "leaderboard", "digits", "--json").stdout)
    ranked = {row["team"]: row for row in board}
    assert ranked["beta"]["rank"] == 1 and ranked["alpha"]["rank"] is None and ranked["alpha"]["score"] is None
    refused = harness(home, "select", "digits", "--team", "alpha", alpha)
    assert refused.returncode == 2

    # a submission queued after the round, withdrawn at its team's request: the next round skips it
    late = submit(home, "gamma", behave_image("constant"))
    assert harness(home, "finalize", "digits").returncode == 2
    done = harness(home, "withdraw", "digits", late, "--reason", "submitted the wrong image")
    assert done.returncode == 0 and "it has no record yet" in done.stderr
    again = harness(home, "round", "digits")
    assert again.returncode == 0 and "no pending submissions" in again.stderr
    states = {s.id: s.state for s in Ledger(home, "digits").all()}
    assert states == {alpha: DISQUALIFIED, beta: EVALUATED, late: WITHDRAWN}
    final = harness(home, "finalize", "digits", "--json")
    assert final.returncode == 0, final.stderr
    assert [row["team"] for row in json.loads(final.stdout)["leaderboard"] if row["rank"]] == ["beta"]
    assert PENDING not in states.values()
