"""The evaluation record validates against its JSON Schema, and the schema rejects broken records."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from harness.records.record import validate_record

VALID = {
    "schema": "harness.evaluation/1",
    "evaluation_id": "ev-1",
    "round_id": None,
    "attempt": 1,
    "competition": "digits",
    "submission": {"id": "sub-1", "team": "t", "image": "img", "image_digest": "sha256:" + "a" * 64},
    "verdict": "SCORED",
    "failed_phase": None,
    "message": "",
    "phases": {
        "train": {
            "verdict": "OK",
            "exit_code": 0,
            "wall_s": 1.0,
            "cpu_s": 0.5,
            "peak_memory_bytes": 10,
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "log_truncated": False,
            "limits": {
                "cpus": 1,
                "memory": 1,
                "gpus": 0,
                "gpu_memory": None,
                "wall_clock_s": 1,
                "pids": 1,
                "disk": 1,
                "log_bytes": 1,
            },
        }
    },
    "scores": {"public": {"accuracy": 0.9}},
    "manifest": {"data_sha256": "b" * 64, "config_sha256": "c" * 64, "harness_version": "0.1.0", "seed": 42, "host": {}},
    "mlflow_run_id": None,
    "created_at": "2026-11-28T21:00:00.000Z",
}


def make_record(
    evaluation_id: str,
    submission_id: str,
    team: str,
    verdict: str = "SCORED",
    scores: dict | None = None,
    *,
    submitted_at: str = "2026-01-01T00:00:00Z",
    created_at: str = "2026-01-09T00:00:00Z",
    message: str = "",
    round_id: str | None = None,
    image_digest: str = "sha256:" + "0" * 64,
) -> dict:
    """A valid record (schema and all) with these fields: what tests write into ``records/``."""
    record = copy.deepcopy(VALID)
    record.update(
        evaluation_id=evaluation_id,
        round_id=round_id,
        verdict=verdict,
        failed_phase=None if verdict == "SCORED" else "train",
        message=message,
        scores=scores or {},
        created_at=created_at,
    )
    record["submission"] = {"id": submission_id, "team": team, "image": "img", "image_digest": image_digest, "submitted_at": submitted_at}
    validate_record(record)
    return record


def test_valid_record():
    validate_record(VALID)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(verdict="GREAT"),
        lambda r: r["submission"].update(image_digest="latest"),
        lambda r: r["phases"]["train"].pop("wall_s"),
        lambda r: r.update(failed_phase="eval"),
        lambda r: r["manifest"].pop("seed"),
        lambda r: r.update(surprise=1),
    ],
)
def test_broken_records_are_refused(mutate):
    broken = copy.deepcopy(VALID)
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_record(broken)
