"""A round keeps its promises under attack: beside a fork bomb, a memory balloon and a disk filler,
a well-behaved submission gets exactly the verdict and scores a solo run gives it, and the host answers.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_check import check
from test_round import in_process

from harness.cli import main as harness_main
from harness.runner.ray_pool import connect_ray

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Half a CPU per phase: on 2 cores all four submissions' train phases run at once.
OVERRIDES = (
    "limits.train.cpus=0.5",
    "limits.infer.cpus=0.5",
    "limits.train.memory=256m",
    "limits.train.pids=64",
    "limits.train.disk=64m",
    "limits.train.wall_clock_s=8",
)
TEAMS = {"good": "constant", "bomb": "forkbomb", "balloon": "balloon", "filler": "diskfill_many"}


def test_hostile_neighbours_change_nothing(home, competition, docker_client, behave_image):
    solo = check(competition, docker_client, behave_image("constant"), *OVERRIDES)
    assert solo.verdict == "SCORED", solo.message
    for team, behaviour in TEAMS.items():
        assert harness_main(["submit", "digits", "--team", team, "--image", behave_image(behaviour)]) == 0

    latencies, result = [], {}
    # the round on this process's Ray (the command line is not what is tested here), started from this
    # thread: Ray's processes end with the thread that started them
    connect_ray()
    round_ = threading.Thread(target=lambda: result.update(done=in_process(home, "round", "digits", *OVERRIDES)))
    round_.start()
    while round_.is_alive():  # while it runs, the host starts a process and the engine answers
        started = time.monotonic()
        subprocess.run(["true"], check=True)
        docker_client.ping()
        latencies.append(time.monotonic() - started)
        time.sleep(0.2)
    round_.join()
    assert result["done"].returncode == 0, result["done"].stderr

    records = {
        r["submission"]["team"]: r for r in map(json.loads, map(Path.read_text, (home / "competitions/digits/records").glob("*.json")))
    }
    assert {team: record["verdict"] for team, record in records.items()} == {
        "good": "SCORED",
        "bomb": "TIMEOUT",
        "balloon": "MEMORY_LIMIT",
        "filler": "OUTPUT_LIMIT",
    }
    good = records["good"]
    assert good["scores"] == solo.scores
    assert {p: (f["verdict"], f["exit_code"]) for p, f in good["phases"].items()} == {
        p: (f["verdict"], f["exit_code"]) for p, f in solo.to_dict()["phases"].items()
    }
    assert records["bomb"]["phases"]["train"]["peak_pids"] == 64
    assert max(latencies) < 5.0, latencies  # a hang catcher, not a benchmark
