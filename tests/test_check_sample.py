"""The participant's view: `harness check --json` on the sample submission prints a scored record."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.records.record import validate_record

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_check_json_of_the_sample(home, sample_image):
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "digits", "--image", sample_image, "--json"],
        env={**os.environ, "HARNESS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    validate_record(record)
    assert record["verdict"] == "SCORED"
    assert record["submission"]["image_digest"].startswith("sha256:")
    for phase in ("train", "infer"):
        assert record["phases"][phase]["verdict"] == "OK"
        assert record["phases"][phase]["wall_s"] > 0
        assert record["phases"][phase]["peak_memory_bytes"] > 0
    assert record["scores"]["public"]["accuracy"] >= 0.90
    assert "train: OK" in done.stderr and "infer: OK" in done.stderr
