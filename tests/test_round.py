"""A round over three submissions on real Ray, Docker and MLflow, through the command line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(home: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``harness ARGS`` with ``HARNESS_HOME=home``, its exit status and output: run in this process
    (the command line's own ``main``; a round runs on this process's Ray, started once for all of
    them, not on a new one each time), or, where ``env`` changes what Ray's workers must see (an
    engine's ``DOCKER_HOST``), as a process of its own."""
    if env is not None:
        env = {**os.environ, "HARNESS_HOME": str(home), **env}
        return subprocess.run([*HARNESS, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return in_process(home, *args)


def in_process(home: Path, *args: str) -> subprocess.CompletedProcess:
    from harness.cli import main
    from harness.rounds import driver

    out, err = io.StringIO(), io.StringIO()
    drive_round = driver.drive_round  # its progress goes to the stream it was given (by default, the stderr of its import)
    saved = os.environ.get("HARNESS_HOME")
    os.environ["HARNESS_HOME"] = str(home)
    driver.drive_round = lambda competition, backend=None, out=None: drive_round(competition, backend, out=err)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's refusals
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        driver.drive_round = drive_round
        if saved is None:
            del os.environ["HARNESS_HOME"]
        else:
            os.environ["HARNESS_HOME"] = saved
    return subprocess.CompletedProcess([*HARNESS, *args], code, out.getvalue(), err.getvalue())


def submit(home: Path, team: str, image: str) -> str:
    done = harness(home, "submit", "digits", "--team", team, "--image", image)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_round_of_three(home, behave_image):
    # A scored image that trains in no time ("constant": it predicts 0 for every id; the sample's own
    # accuracy is tests/test_images.py's and tests/test_smoke.py's), a crash and a sleeper past 8 s.
    ids = {
        "scored": submit(home, "alpha", behave_image("constant")),
        "broken": submit(home, "beta", behave_image("crash")),
        "sleeper": submit(home, "gamma", behave_image("sleeper")),
    }
    done = harness(home, "round", "digits", "limits.train.wall_clock_s=8")
    assert done.returncode == 0, done.stderr

    records = {
        r["submission"]["id"]: r for r in map(json.loads, map(Path.read_text, (home / "competitions/digits/records").glob("*.json")))
    }
    assert {records[ids[k]]["verdict"] for k in ids} == {"SCORED", "RUNTIME_ERROR", "TIMEOUT"}
    assert records[ids["scored"]]["verdict"] == "SCORED"
    assert 0.05 < records[ids["scored"]]["scores"]["public"]["accuracy"] < 0.15  # one digit in ten is a 0
    assert records[ids["broken"]]["verdict"] == "RUNTIME_ERROR"
    assert records[ids["sleeper"]]["verdict"] == "TIMEOUT"
    # every phase ran as a Ray task: the task stamps the Ray node that ran it
    for record in records.values():
        assert record["round_id"].startswith("round-")
        assert all(phase["node"] for phase in record["phases"].values())

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits")
    runs = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'evaluation'")
    assert len(runs) == 3
    by_submission = {run.data.tags["harness.submission"]: run for run in runs}
    assert set(by_submission) == set(ids.values())
    scored_run = by_submission[ids["scored"]]
    assert scored_run.data.tags["harness.team"] == "alpha"
    assert scored_run.data.tags["harness.image_digest"].startswith("sha256:")
    assert scored_run.data.metrics["public_accuracy"] == records[ids["scored"]]["scores"]["public"]["accuracy"]
    assert scored_run.data.params["limits.train.wall_clock_s"] == "8.0"
    assert records[ids["scored"]]["mlflow_run_id"] == scored_run.info.run_id
    artifacts = {a.path for a in client.list_artifacts(scored_run.info.run_id)}
    assert {f"{records[ids['scored']]['evaluation_id']}.json", "logs", "predictions"} <= artifacts

    lines = done.stdout.splitlines()
    first = next(line for line in lines if line.startswith("1 "))
    assert "alpha" in first and "SCORED" in first
    assert any(line.startswith("-") and "beta" in line and "RUNTIME_ERROR" in line for line in lines)
    assert any(line.startswith("-") and "gamma" in line and "TIMEOUT" in line for line in lines)

    again = harness(home, "round", "digits")
    assert again.returncode == 0 and "no pending submissions" in again.stderr
