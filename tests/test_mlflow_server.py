"""MLflow in depth: a real ``mlflow server`` on loopback, stopped in the middle of a real round and
started again, then ``harness sync``: one run per evaluation, with telemetry series and artifacts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from evaluations import evaluate

from harness.cli import main
from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.competition.paths import TELEMETRY_FILE
from harness.proofs.sync import sync
from harness.records.model_store import ModelStore
from harness.records.publish import publish
from harness.records.record import load_records
from harness.records.tracking import Tracker

pytestmark = pytest.mark.docker
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


class MlflowServer:
    """``mlflow server`` on a free loopback port, over a sqlite store that outlives a restart."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                MLFLOW,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
            ],
            stdout=open(self.root / "server.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # MLflow's job runner (eight processes, about 35 CPU-s a start here) runs its GenAI jobs; the harness sends none
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, (self.root / "server.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"mlflow server did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
            self.process.wait(timeout=60)
        self.process = None


@pytest.fixture
def mlflow_server(tmp_path, prepared_data):
    server = MlflowServer(tmp_path / "mlflow-server")
    shutil.copyfile(prepared_data / "mlflow.db", server.root / "mlflow.db")  # an empty store, its tables made once (seconds each)
    yield server
    server.stop()


@pytest.mark.slow
def test_server_stopped_mid_round_then_sync_leaves_one_run_per_evaluation(home, behave_image, mlflow_server, monkeypatch, capsys):
    import ray
    from mlflow.tracking import MlflowClient

    mlflow_server.start()  # slow to start: it does so while the images build
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    teams = {"burner": behave_image("cpuburn"), "steady": behave_image("constant"), "late": behave_image("constant")}
    for team, image in teams.items():
        assert main(["submit", "digits", "--team", team, "--image", image]) == 0
    mlflow_server.wait()
    tracking = f"tracking.uri={mlflow_server.uri}"
    no_smoke = "competition.smoke.enabled=false"  # the full phases' runs are what MLflow gets: two containers each, not four

    uploaded: list[str] = []
    fill_run = Tracker.fill_run

    def fill_then_stop_the_server(self, run_id, record, *args):
        fill_run(self, run_id, record, *args)
        uploaded.append(record.evaluation_id)
        if len(uploaded) == 1:
            mlflow_server.stop()  # mid-round: the other evaluations are still running or queued

    monkeypatch.setattr(Tracker, "fill_run", fill_then_stop_the_server)
    try:
        assert main(["round", "digits", tracking, no_smoke]) == 0
    finally:
        ray.shutdown()
    assert "`harness sync digits` uploads it later" in capsys.readouterr().err
    records = load_records(home / "competitions" / "digits" / "records")
    assert len(records) == 3 and len(uploaded) == 1
    assert [r["evaluation_id"] for r in records if r["mlflow_run_id"]] == uploaded  # the others are kept on disk

    monkeypatch.setattr(Tracker, "fill_run", fill_run)
    mlflow_server.start()
    mlflow_server.wait()
    assert main(["sync", "digits", tracking]) == 0
    assert "2 uploaded, 1 already in MLflow, 0 failed" in capsys.readouterr().err
    assert main(["sync", "digits", tracking]) == 0
    assert "0 uploaded, 3 already in MLflow, 0 failed" in capsys.readouterr().err

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name("digits")
    runs = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'evaluation'")
    records = {r["evaluation_id"]: r for r in load_records(home / "competitions" / "digits" / "records")}
    assert sorted(run.data.tags["harness.evaluation"] for run in runs) == sorted(records)  # exactly one run each
    (group,) = client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'round'")
    round_id = group.data.tags["harness.round"]
    store = ModelStore.for_competition(Competition.load(load_settings("digits", [tracking]), home))
    for run in runs:
        record = records[run.data.tags["harness.evaluation"]]
        if record["manifest"]["model_sha256"]:  # archived in the server's own artifact store, with the run
            assert store.has(record["manifest"]["model_sha256"]) and store.uri == "mlflow-artifacts:/harness-models"
        assert record["mlflow_run_id"] == run.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == group.info.run_id and run.data.tags["harness.round"] == round_id == record["round_id"]
        assert (
            run.data.tags["harness.team"] == record["submission"]["team"]
            and run.data.tags["harness.submission"] == record["submission"]["id"]
        )
        assert run.data.params["data_sha256"] == record["manifest"]["data_sha256"]
        assert run.data.params["environment_sha256"] == record["manifest"]["environment"]["sha256"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {f"{record['evaluation_id']}.json", "logs", "predictions", "manifest", "telemetry"} <= artifacts
        assert client.list_artifacts(run.info.run_id, "manifest")[0].path == f"manifest/{record['manifest']['data_sha256']}.json"
    (burner,) = [run for run in runs if run.data.tags["harness.team"] == "burner"]
    memory = client.get_metric_history(burner.info.run_id, "train_memory_bytes")
    cpu = client.get_metric_history(burner.info.run_id, "train_cpu_cores")
    assert len(memory) > 1 and sorted(m.step for m in memory) == list(range(len(memory)))  # the series MLflow's UI plots
    assert all(m.value > 0 for m in memory) and cpu and max(m.value for m in cpu) > 0  # busy, as much as the host let it


def test_an_upload_cut_short_is_redone_without_doubles(competition, docker_client, behave_image, home, monkeypatch):
    digits = competition()
    # tracked below, by hand; its train phase naps 2 s: a memory series of several points (one each 0.5 s), no CPU burnt
    record = evaluate(digits, docker_client, behave_image("nap2"))
    tracker = Tracker(None, "digits", home)
    outage, log_files = [True], tracker.log_files

    def artifacts_fail(*args, **kwargs):  # after the params, metrics and series went in
        if outage:
            raise ConnectionError("server went away")
        return log_files(*args, **kwargs)

    monkeypatch.setattr(tracker, "log_files", artifacts_fail)
    assert "ConnectionError" in publish(tracker, digits, record, digits.paths.records)
    run_id = record.mlflow_run_id
    assert tracker.runs_by_evaluation() == {record.evaluation_id: (run_id, "RUNNING")}

    outage.clear()
    summary = sync(digits, tracker)
    assert summary.uploaded == [record.evaluation_id] and not summary.failed
    assert tracker.runs_by_evaluation() == {record.evaluation_id: (run_id, "FINISHED")}
    points = json.loads((digits.paths.runs / record.evaluation_id / TELEMETRY_FILE).read_text())["train"]["memory_bytes"]
    assert len(tracker.client.get_metric_history(run_id, "train_memory_bytes")) == len(points) > 1  # logged twice, stored once
    assert len(tracker.client.get_metric_history(run_id, "public_accuracy")) == 1
    assert sync(digits, tracker).present == 1
