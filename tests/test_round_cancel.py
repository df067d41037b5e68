"""Ctrl-C during a round: containers killed and removed, unfinished submissions pending again, a summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from test_resume import journals, records
from test_round import submit

from harness.rounds.journal import CANCELLED
from harness.submissions.ledger import PENDING, Ledger

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_ctrl_c_stops_the_round_cleanly(home, competition, behave_image, docker_client):
    ids = [submit(home, team, behave_image("sleeper")) for team in ("alpha", "beta")]
    # Its own session, like a terminal's foreground job: Ctrl-C reaches the driver and Ray's processes alike.
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "round", "digits", "limits.train.wall_clock_s=120"],
        env={**os.environ, "HARNESS_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while (
            not journals(home)
            or len(docker_client.containers.list(filters={"label": f"harness.round={journals(home)[0]['round_id']}", "status": "running"}))
            < 2
        ):
            assert time.monotonic() < deadline and driver.poll() is None, "the round never got going"
            time.sleep(0.2)
        round_id = journals(home)[0]["round_id"]
        os.killpg(driver.pid, signal.SIGINT)
        _, stderr = driver.communicate(timeout=60)  # well before the sleepers' 120 s wall clock would end them
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)

    assert driver.returncode == 130, stderr
    assert "interrupted: stopping the round" in stderr
    assert "cancelled 2 evaluation(s), removed 2 container(s); they are pending again" in stderr
    assert "cancelled: 2" in stderr  # the summary table
    assert not docker_client.containers.list(all=True, filters={"label": f"harness.round={round_id}"})
    ledger = Ledger.of(competition())
    assert {ledger.get(i).state for i in ids} == {PENDING}
    assert not records(home)
    assert [j["state"] for j in journals(home)] == [CANCELLED]
