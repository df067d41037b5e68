"""The smoke stage: a few training rows through train and infer before the full evaluation, with
real containers, real rounds (Ray, MLflow, the ledger) and the command line."""

from __future__ import annotations

import csv
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_resume import journals, records
from test_round import harness, submit
from test_round_faults import EngineProxy

from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.competition.smoke import smoke_stage
from harness.evaluation.check import check_image
from harness.evaluation.evaluation import Evaluation
from harness.records.record import validate_record
from harness.runner.cleanup import sweep
from harness.runner.docker_backend import DockerBackend
from harness.runner.ray_pool import RayPhasePool
from harness.submissions.intake import pin_image
from harness.submissions.ledger import EVALUATED, Ledger
from harness.util.errors import ConfigError

SMOKE_LABEL = "smoke test (48 training rows, 32 inputs)"


def load(home: Path, *overrides: str) -> Competition:
    return Competition.load(load_settings("digits", list(overrides)), home)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def quiet():
    return open(os.devnull, "w")


# -- the smoke data -------------------------------------------------------------------------------


def test_smoke_data_is_carved_from_training_rows_by_seed(home):
    competition = load(home)
    smoke = smoke_stage(competition)
    assert smoke is not None and smoke.paths.root == home / "competitions/digits/smoke"
    train = {r["id"]: r for r in rows(competition.paths.train / "train.csv")}
    test_ids = {r["id"] for r in rows(competition.paths.test / "test.csv")}
    smoke_train, smoke_test = rows(smoke.paths.train / "train.csv"), rows(smoke.paths.test / "test.csv")
    labels = rows(smoke.paths.labels)
    assert (len(smoke_train), len(smoke_test), len(labels)) == (48, 32, 32)
    assert "label" in smoke_train[0] and "label" not in smoke_test[0]  # the labels stay out of the mounts
    ids = {r["id"] for r in smoke_train} | {r["id"] for r in smoke_test}
    assert len(ids) == 80 and ids <= set(train) and not ids & test_ids  # training rows only, never the test set
    assert all(train[r["id"]] == r for r in smoke_train)
    assert {r["id"]: r["label"] for r in labels} == {r["id"]: train[r["id"]]["label"] for r in smoke_test}
    assert smoke.test_ids == tuple(r["id"] for r in smoke_test) and smoke.label == SMOKE_LABEL

    # Deterministic: the same carve is not written again; another seed carves other rows.
    stamp = (smoke.paths.train / "train.csv").stat().st_mtime_ns
    again = smoke_stage(load(home, "competition.smoke.train_rows=48"))
    assert again.data_sha256 == smoke.data_sha256 and (smoke.paths.train / "train.csv").stat().st_mtime_ns == stamp
    other = smoke_stage(load(home, "seed=7"))
    assert other.data_sha256 != smoke.data_sha256
    assert (home / f"competitions/digits/smoke/manifests/{smoke.data_sha256}.json").is_file()  # the record's hash is kept


def test_smoke_limits_take_the_full_phase_and_never_more_time(home):
    smoke = smoke_stage(load(home, "limits.train.memory=1g", "limits.infer.wall_clock_s=20", "+competition.smoke.limits.train.pids=32"))
    assert smoke.limits.train.memory == 1024**3 and smoke.limits.train.pids == 32
    assert smoke.limits.train.wall_clock_s == 60 and smoke.limits.infer.wall_clock_s == 20
    with pytest.raises(ConfigError, match=r"^competition\.smoke\.limits\.train\.speed: unknown limit \(known: cpus, "):
        smoke_stage(load(home, "+competition.smoke.limits.train.speed=3"))
    with pytest.raises(ConfigError, match=r"^competition\.smoke\.limits\.score: unknown phase"):
        smoke_stage(load(home, "+competition.smoke.limits.score.cpus=1"))
    with pytest.raises(ConfigError, match=r"^competition\.smoke\.train_rows: must be a whole number from 2"):
        load(home, "competition.smoke.train_rows=1")
    assert smoke_stage(load(home, "competition.smoke.enabled=false")) is None


# -- one evaluation, in process ---------------------------------------------------------------------


@pytest.mark.docker
def test_slow_train_that_crashes_in_infer_fails_in_smoke_without_a_full_train(home, docker_client, behave_image):
    """0.1 s per training row: ~2.5 min on the full training data, 5 s on the smoke rows; its infer
    crashes. The verdict comes within the smoke limits and the full train never starts."""
    record = check_image(load(home), behave_image("slowcrash"), out=quiet())
    assert (record.verdict, record.failed_phase, record.failed_stage) == ("RUNTIME_ERROR", "infer", "smoke")
    assert record.message.startswith(f"{SMOKE_LABEL}: infer exited with code 1: RuntimeError: slowcrash: inference is broken")
    data = record.to_dict()
    validate_record(data)
    assert data["phases"] == data["smoke"]["phases"]  # the phases that ran are the smoke ones
    train = data["phases"]["train"]
    # OK under the smoke's 60 s (the full data's ~2.5 min would be a TIMEOUT), after its 48 rows' 4.8 s
    assert train["verdict"] == "OK" and 4.8 <= train["wall_s"] and train["limits"]["wall_clock_s"] == 60
    assert data["smoke"]["train_rows"] == 48 and data["smoke"]["test_rows"] == 32
    assert data["smoke"]["data_sha256"] == smoke_stage(load(home)).data_sha256
    assert data["manifest"]["data_sha256"] == load(home).data_sha256  # the competition's data hash, as before
    run = home / "competitions/digits/runs" / record.evaluation_id
    assert (run / "smoke/model/model.json").is_file() and not (run / "model").exists()  # no full train ran
    assert "training on 48 rows" in (run / "logs/train.stdout.log").read_text()
    assert "slowcrash: inference is broken" in (run / "logs/infer.stderr.log").read_text()


@pytest.mark.docker
def test_smoke_off_is_the_old_path(home, docker_client, behave_image):
    record = check_image(load(home, "competition.smoke.enabled=false"), behave_image("crash"), out=quiet())
    assert (record.verdict, record.failed_phase, record.failed_stage, record.smoke) == ("RUNTIME_ERROR", "train", None, None)
    assert record.message.startswith("train exited with code 1: RuntimeError: model exploded at epoch 3")
    assert "failed_stage" not in record.to_dict() and "smoke" not in record.to_dict()
    run = home / "competitions/digits/runs" / record.evaluation_id
    assert (run / "model").is_dir() and not (run / "smoke").exists()


@pytest.mark.docker
def test_invalid_smoke_predictions_end_it_as_invalid_predictions(home, docker_client, behave_image):
    record = check_image(load(home), behave_image("short"), out=quiet())
    assert (record.verdict, record.failed_phase, record.failed_stage) == ("INVALID_PREDICTIONS", "score", "smoke")
    assert record.message.startswith(f"{SMOKE_LABEL}: ") and "missing" in record.message
    assert set(record.phases.ran()) == {"train", "infer"} and record.scores == {}


# -- harness check ----------------------------------------------------------------------------------


@pytest.mark.docker
def test_check_shows_the_smoke_stage_for_the_competition_and_a_kit(home, behave_image, tmp_path):
    env = {**os.environ, "HARNESS_HOME": str(home)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True, timeout=300)

    image = behave_image("constant")
    done = cli("check", "digits", "--image", image, "--json")
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert f"{SMOKE_LABEL} first, then the full data" in err
    assert err.index("smoke train: OK") < err.index("smoke infer: OK") < err.index("\ntrain: OK") < err.index("\ninfer: OK")
    # The participant's view (--json): a valid scored record, its smoke stage passed first, its full
    # phases under the full limits, no smoke scores. (The sample, torch, passes smoke then scores
    # through `harness check` in tests/test_init.py and through the service in tests/test_demo.py.)
    record = json.loads(done.stdout)
    validate_record(record)
    assert record["verdict"] == "SCORED" and "failed_stage" not in record, record.get("message")
    assert record["submission"]["image_digest"].startswith("sha256:") and "accuracy" in record["scores"]["public"]
    for phase in ("train", "infer"):
        assert record["phases"][phase]["verdict"] == "OK"
        assert record["phases"][phase]["wall_s"] > 0 and record["phases"][phase]["peak_memory_bytes"] > 0
    smoke = record["smoke"]
    assert all(p["verdict"] == "OK" for p in smoke["phases"].values()) and set(smoke["phases"]) == {"train", "infer"}
    assert record["phases"]["train"]["limits"]["wall_clock_s"] == 600  # the full phases, under the full limits
    assert "scores" not in smoke  # smoke scores are never published

    kit = tmp_path / "kit"
    assert cli("kit", "digits", "--output", str(kit)).returncode == 0
    done = cli("check", "--kit", str(kit), "--image", behave_image("slowcrash"), "--json")
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert (record["verdict"], record["failed_stage"], record["failed_phase"]) == ("RUNTIME_ERROR", "smoke", "infer")
    smoke_dir = home / "kits/digits/smoke"  # carved from the kit's training part, beside its runs
    dev = {r["id"] for r in rows(kit / "data/dev/test.csv")}
    carved = {r["id"] for r in rows(smoke_dir / "data/train/train.csv")} | {r["id"] for r in rows(smoke_dir / "data/test/test.csv")}
    assert len(carved) == 80 and not carved & dev
    assert record["smoke"]["data_sha256"] != record["manifest"]["data_sha256"]


# -- rounds ---------------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_a_smoke_failure_in_a_round_is_not_charged_unless_configured(home, behave_image):
    quota = "competition.quota.per_day=1"
    image = behave_image("slowcrash")

    def submit_one() -> subprocess.CompletedProcess:
        return harness(home, "submit", "digits", quota, "--team", "A", "--image", image)

    first = submit_one()
    assert first.returncode == 0, first.stderr
    done = harness(home, "round", "digits")
    assert done.returncode == 0, done.stderr
    (record,) = records(home)  # ended in the smoke stage (below): the full train's minutes never ran
    assert (record["verdict"], record["failed_stage"], record["failed_phase"]) == ("RUNTIME_ERROR", "smoke", "infer")
    assert record["message"].startswith(f"{SMOKE_LABEL}: infer exited with code 1")
    assert not (home / "competitions/digits/runs" / record["evaluation_id"] / "model").exists()
    ledger = Ledger(home, "digits")
    failed = ledger.get(first.stdout.strip())
    assert (failed.state, failed.quota_exempt, failed.charged) == (EVALUATED, "smoke", False)

    second = submit_one()  # the smoke failure took no slot of the quota of one
    assert second.returncode == 0, second.stderr
    done = harness(home, "round", "digits", "competition.quota.charge_smoke_failures=true")
    assert done.returncode == 0, done.stderr
    charged = ledger.get(second.stdout.strip())
    assert (charged.state, charged.quota_exempt, charged.charged) == (EVALUATED, None, True)
    refused = submit_one()
    assert refused.returncode == 2 and "has used its quota of 1" in refused.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_an_infra_error_in_smoke_is_retried(home, behave_image, docker_client, tmp_path):
    """The engine goes away while the smoke train's container runs: retried, then scored once."""
    sid = submit(home, "A", behave_image("nap3"))
    proxy = EngineProxy(tmp_path / "engine.sock")
    proxy.start()
    result: dict = {}
    env = {"DOCKER_HOST": f"unix://{proxy.path}"}
    driver = threading.Thread(target=lambda: result.update(done=harness(home, "round", "digits", "--json", env=env)))
    driver.start()
    deadline, running = time.monotonic() + 240, []
    while not running:
        assert time.monotonic() < deadline and driver.is_alive(), "the round never got going"
        if journals(home):
            label = f"harness.round={journals(home)[0]['round_id']}"
            running = docker_client.containers.list(filters={"label": label, "status": "running"})
        time.sleep(0.1)
    assert running[0].name.endswith("-smoke-train")  # the cut falls in the smoke stage
    proxy.stop()
    time.sleep(1.5)
    proxy.start()
    driver.join(timeout=300)
    done = result["done"]
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["retried"] == 1 and summary["verdicts"] == {"SCORED": 1}, summary
    (record,) = records(home)
    assert record["submission"]["id"] == sid and record["attempt"] == 2 and record["verdict"] == "SCORED"
    assert record["smoke"]["phases"]["train"]["verdict"] == "OK"
    assert Ledger(home, "digits").get(sid).charged


# -- the pool's smoke lane --------------------------------------------------------------------------


@pytest.mark.docker
def test_smoke_phases_go_first_and_keep_their_slot(home, docker_client, behave_image):
    """Three slots, two kept for smoke while a smoke phase runs: three full trains take only one; a
    smoke phase queued after them starts at once, ahead of the full ones waiting. With no smoke phase
    queued or running, full phases take every slot."""
    competition = load(home, "limits.train.cpus=0.1", "limits.train.memory=64m")
    image = behave_image("nap5")
    digest = pin_image(DockerBackend(docker_client), image).digest

    def evaluation(smoke: bool) -> Evaluation:
        submission = {"id": f"sub-{secrets.token_hex(6)}", "team": f"t{secrets.token_hex(2)}", "image": image, "image_digest": digest}
        made = Evaluation(competition, submission, round_id=round_id)
        if not smoke:
            made.smoke = None  # straight to the full phases
        return made

    def submit_smoke(pool: RayPhasePool) -> Evaluation:
        smoke = evaluation(True)
        spec = smoke.next_phase()
        assert spec.run_id.endswith("-smoke") and spec.limits.wall_clock_s == 60
        pool.submit(smoke, spec, group=smoke.submission.team, smoke=True)
        return smoke

    def submit_fulls(pool: RayPhasePool) -> list[Evaluation]:
        fulls = [evaluation(False) for _ in range(3)]
        for e in fulls:
            pool.submit(e, e.next_phase(), group=e.submission.team)
        return fulls

    round_id = f"round-lanes-{secrets.token_hex(4)}"
    pool = RayPhasePool(max_parallel=3, num_cpus=3, smoke_slots=2)
    try:
        first = submit_smoke(pool)
        fulls = submit_fulls(pool)
        pool.dispatch()
        assert set(pool.running_keys()) == {first, fulls[0]}  # the third slot stays free for smoke
        second = submit_smoke(pool)
        pool.dispatch()
        assert set(pool.running_keys()) == {first, fulls[0], second}
    finally:
        pool.cancel()
        sweep(DockerBackend(docker_client), {"harness.round": round_id})
    pool = RayPhasePool(max_parallel=2, num_cpus=3, smoke_slots=1)
    try:
        fulls = submit_fulls(pool)
        pool.dispatch()
        assert set(pool.running_keys()) == set(fulls[:2])  # no smoke in sight: no slot kept idle
    finally:
        pool.cancel()
        sweep(DockerBackend(docker_client), {"harness.round": round_id})
