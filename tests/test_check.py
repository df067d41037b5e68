"""``harness check`` end to end with real containers: one test per verdict, exact figures."""

from __future__ import annotations

import pytest

from harness.evaluation.check import check_image

pytestmark = pytest.mark.docker


def check(competition, docker_client, image, *overrides):
    return check_image(competition(*overrides), image, out=open("/dev/null", "w"))


def test_valid_submission_is_scored(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("constant"))
    assert record.verdict == "SCORED", record.message
    assert record.failed_phase is None
    assert set(record.phases.ran()) == {"train", "infer"}
    assert all(p.verdict == "OK" and p.exit_code == 0 for p in record.phases.ran().values())
    # a constant "0" predictor scores the share of zeros, roughly a tenth
    assert 0.05 < record.scores["public"]["accuracy"] < 0.15
    assert record.submission.image_digest.startswith("sha256:")


def test_malformed_predictions_name_the_fault(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("malformed"))
    assert record.verdict == "INVALID_PREDICTIONS"
    assert record.failed_phase == "score"
    assert "header" in record.message and "identifier" in record.message


def test_missing_rows_are_listed(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("short"))
    assert record.verdict == "INVALID_PREDICTIONS"
    assert "missing" in record.message


def test_sleeper_past_wall_clock_times_out(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("sleeper"), "limits.train.wall_clock_s=2")
    train = record.phases.train
    assert record.verdict == "TIMEOUT" and record.failed_phase == "train"
    assert record.phases.infer is None
    # never before the limit; killed without a stop grace period (the engine's default is 10 s)
    assert train.wall_s >= 2.0 and 0.0 <= train.timeout_overshoot_s < 10.0
    assert train.timeout_overshoot_s == round(train.wall_s - 2.0, 3)


def test_balloon_past_memory_limit(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("balloon"), "limits.train.memory=256m")
    train = record.phases.train
    assert record.verdict == "MEMORY_LIMIT", record.message
    assert "256.0 MiB" in record.message
    assert 0.9 * 256 * 1024**2 <= train.peak_memory_bytes <= 1.1 * 256 * 1024**2


def test_crash_is_runtime_error_with_log_tail(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("crash"))
    assert record.verdict == "RUNTIME_ERROR"
    assert record.phases.train.exit_code == 1
    assert "RuntimeError: model exploded at epoch 3" in record.message


def test_missing_image_is_invalid_image(competition, docker_client):
    record = check(competition, docker_client, "harness-test/does-not-exist:1")
    assert record.verdict == "INVALID_IMAGE" and record.failed_phase == "intake"
    assert "not on this machine" in record.message
    assert record.phases.ran() == {}
