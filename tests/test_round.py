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

    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.get("HARNESS_HOME")
    os.environ["HARNESS_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's refusals
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
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
    # accuracy is tests/test_audit.py's and tests/test_smoke.py's), a crash and a sleeper past 8 s.
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


def test_one_teams_cap_holds_and_the_winners_rerun_shows_each_spread_before_finalize(home, behave_image):
    """One round: team "crowd" submits three (deterministic: "constant" predicts 0 for every id) under a
    cap of one at a time, team "dice" one whose guesses follow HARNESS_SEED ("seeded"). Then the
    top two re-run twice with other seeds: a zero and a non-zero spread; finalize waits for it."""
    crowd = [submit(home, "crowd", behave_image("constant")) for _ in range(3)]
    dice = submit(home, "dice", behave_image("seeded"))
    quick = ("competition.smoke.enabled=false", "competition.quota.concurrent_per_team=1")
    done = harness(home, "round", "digits", *quick)
    assert done.returncode == 0, done.stderr
    records = {
        r["submission"]["id"]: r for r in map(json.loads, map(Path.read_text, (home / "competitions/digits/records").glob("*.json")))
    }
    assert {records[s]["verdict"] for s in [*crowd, dice]} == {"SCORED"}

    def span(sid: str) -> tuple[str, str]:  # from its train's start to its infer's end, as the engine timed them
        phases = records[sid]["phases"]
        return phases["train"]["started_at"], phases["infer"]["ended_at"]

    crowd_spans = sorted(map(span, crowd))
    assert all(earlier[1] <= later[0] for earlier, later in zip(crowd_spans, crowd_spans[1:], strict=False)), crowd_spans
    assert span(dice)[0] < crowd_spans[-1][0]  # the other team did not wait behind the crowd

    def finalize() -> subprocess.CompletedProcess:
        return harness(home, "finalize", "digits", "competition.leaderboard.rerun.top_k=2")

    refused = finalize()
    assert refused.returncode == 2 and "run `harness rerun-winners digits` first" in refused.stderr, refused.stderr
    rerun = harness(home, "rerun-winners", "digits", "--top", "2", "--times", "2", "--json")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    entries = {entry["team"]: entry for entry in report["entries"]}
    assert set(entries) == {"crowd", "dice"} and entries["dice"]["submission"] == dice
    assert all(len(entry["runs"]) == 3 and len({run["seed"] for run in entry["runs"]}) == 3 for entry in entries.values())
    assert all(run["verdict"] == "SCORED" for entry in entries.values() for run in entry["runs"])
    assert entries["crowd"]["spread"]["spread"] == 0.0 and entries["dice"]["spread"]["spread"] > 0.0
    final = home / "competitions/digits/final"
    assert json.loads((final / "rerun.json").read_text()) == report
    said = "a rank would change" if report["rank_would_change"] else "no rank would change"
    assert (final / "rerun.txt").read_text().rstrip().endswith(said) and report["rerun_id"] in (final / "rerun.html").read_text()
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}").get_run(records[dice]["mlflow_run_id"])
    assert run.data.tags["harness.audit"].endswith(f"({report['rerun_id']})")  # the report is attached to the winner's run
    assert finalize().returncode == 0
