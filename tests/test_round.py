"""A round over three submissions on real Ray, Docker and MLflow, through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness.cli"]


def harness(home: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_HOME": str(home), **(env or {})}
    return subprocess.run([*HARNESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def submit(home: Path, team: str, image: str) -> str:
    done = harness(home, "submit", "digits", "--team", team, "--image", image)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_round_of_three(home, sample_image, behave_image):
    ids = {
        "sample": submit(home, "alpha", sample_image),
        "broken": submit(home, "beta", behave_image("crash")),
        "sleeper": submit(home, "gamma", behave_image("sleeper")),
    }
    done = harness(home, "round", "digits", "limits.train.wall_clock_s=45")
    assert done.returncode == 0, done.stderr

    records = {
        r["submission"]["id"]: r for r in map(json.loads, map(Path.read_text, (home / "competitions/digits/records").glob("*.json")))
    }
    assert {records[ids[k]]["verdict"] for k in ids} == {"SCORED", "RUNTIME_ERROR", "TIMEOUT"}
    assert records[ids["sample"]]["verdict"] == "SCORED"
    assert records[ids["sample"]]["scores"]["public"]["accuracy"] >= 0.90
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
    sample_run = by_submission[ids["sample"]]
    assert sample_run.data.tags["harness.team"] == "alpha"
    assert sample_run.data.tags["harness.image_digest"].startswith("sha256:")
    assert sample_run.data.metrics["public_accuracy"] == records[ids["sample"]]["scores"]["public"]["accuracy"]
    assert sample_run.data.params["limits.train.wall_clock_s"] == "45.0"
    assert records[ids["sample"]]["mlflow_run_id"] == sample_run.info.run_id
    artifacts = {a.path for a in client.list_artifacts(sample_run.info.run_id)}
    assert {f"{records[ids['sample']]['evaluation_id']}.json", "logs", "predictions"} <= artifacts

    lines = done.stdout.splitlines()
    first = next(line for line in lines if line.startswith("1 "))
    assert "alpha" in first and "SCORED" in first
    assert any(line.startswith("-") and "beta" in line and "RUNTIME_ERROR" in line for line in lines)
    assert any(line.startswith("-") and "gamma" in line and "TIMEOUT" in line for line in lines)

    again = harness(home, "round", "digits")
    assert again.returncode == 0 and "no pending submissions" in again.stderr
