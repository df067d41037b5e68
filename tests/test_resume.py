"""A round whose driver dies: the next ``harness round`` resumes it, runs only what was unfinished,
removes the dead driver's containers and keeps everything it finished. Also the journal and the
recovery on their own (no containers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_round import harness, submit

from harness.rounds.journal import ABANDONED, FINISHED, RoundJournal
from harness.rounds.journal import RUNNING as ROUND_RUNNING
from harness.rounds.recovery import recover
from harness.submissions.ledger import EVALUATED, RUNNING, Ledger
from harness.util.errors import HarnessError


def journals(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (home / "competitions/digits/rounds").glob("round-*.json")]


def records(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (home / "competitions/digits/records").glob("*.json")]


@pytest.mark.docker
@pytest.mark.slow
def test_driver_killed_then_next_round_finishes_the_rest(home, behave_image, docker_client):
    ids = [submit(home, f"team{i}", behave_image("nap1")) for i in range(4)]
    no_smoke = "competition.smoke.enabled=false"  # two phases each, not four: what is resumed is the same
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "round", "digits", no_smoke],
        env={**os.environ, "HARNESS_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (
            records(home)
            and journals(home)
            and docker_client.containers.list(filters={"label": f"harness.round={journals(home)[0]['round_id']}", "status": "running"})
        ):
            assert time.monotonic() < deadline and driver.poll() is None, "the round never got going"
            time.sleep(0.1)
        round_id = journals(home)[0]["round_id"]
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        before = {r["submission"]["id"]: r["evaluation_id"] for r in records(home)}
        assert 0 < len(before) < len(ids)
        assert docker_client.containers.list(all=True, filters={"label": f"harness.round={round_id}"})  # orphans left behind
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # the dead driver's local Ray processes
        except ProcessLookupError:
            pass

    again = harness(home, "round", "digits", no_smoke)
    assert again.returncode == 0, again.stderr
    assert f"the driver of {round_id} died" in again.stderr and "orphan container(s)" in again.stderr

    found = records(home)
    assert sorted(r["submission"]["id"] for r in found) == sorted(ids)  # each exactly once
    assert {r["round_id"] for r in found} == {round_id}  # the same round, resumed
    assert all(r["verdict"] == "SCORED" for r in found)
    assert {r["submission"]["id"]: r["evaluation_id"] for r in found if r["submission"]["id"] in before} == before  # kept, not redone
    assert not docker_client.containers.list(all=True, filters={"label": f"harness.round={round_id}"})
    assert [j["state"] for j in journals(home)] == [FINISHED]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("digits").experiment_id], "tags.`harness.kind` = 'evaluation'")
    assert sorted(run.data.tags["harness.submission"] for run in runs) == sorted(ids)
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_one_driver_at_a_time_and_dead_rounds_are_resumed_or_abandoned(tmp_path):
    directory = tmp_path / "rounds"
    with RoundJournal.begin(directory, "a" * 64) as first:
        first.start()
        with pytest.raises(HarnessError, match="running already"):
            RoundJournal.begin(directory, "a" * 64)
    # ``first`` never finished: its driver is gone (the lock is free) and its journal says running.
    with RoundJournal.begin(directory, "a" * 64) as resumed:
        assert resumed.resumed and resumed.round_id == first.round_id and resumed.dead == [first.round_id]
        resumed.start()
    with RoundJournal.begin(directory, "b" * 64) as other:  # another configuration: a new round
        assert not other.resumed and other.round_id != first.round_id and other.dead == [first.round_id]
        other.start()
        other.finish(FINISHED)
    states = {j["round_id"]: j["state"] for j in map(json.loads, map(Path.read_text, directory.glob("round-*.json")))}
    assert states == {first.round_id: ABANDONED, other.round_id: FINISHED}
    assert json.loads((directory / f"{first.round_id}.json").read_text())["resumes"] == 1
    assert ROUND_RUNNING not in states.values()


def test_recovery_keeps_what_a_dead_round_recorded(home, competition):
    ledger = Ledger.of(competition())
    done, unfinished = (ledger.add(team, "img", "sha256:" + "0" * 64) for team in ("a", "b"))
    for submission in (done, unfinished):
        submission.state = RUNNING
        ledger.save(submission)
    directory = home / "competitions/digits/records"
    directory.mkdir(parents=True, exist_ok=True)
    from test_record import make_record

    (directory / "ev-1.json").write_text(json.dumps(make_record("ev-1", done.id, "a", round_id="round-x")))
    (directory / "ev-2.json").write_text(json.dumps(make_record("ev-2", done.id, "a", round_id="round-other")))

    assert recover(ledger, directory, ["round-x"]) == [done.id]
    assert ledger.get(done.id).state == EVALUATED and ledger.get(done.id).evaluations == ["ev-1"]
    assert ledger.get(unfinished.id).state == RUNNING and {s.id for s in ledger.pending()} == {unfinished.id}
    assert recover(ledger, directory, ["round-x"]) == []  # idempotent
