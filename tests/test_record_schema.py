"""The record's JSON Schema is generated from its typed models: the checked-in file may not drift from
them, every kind of record the harness writes validates and reads back typed, broken ones are refused
naming the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pydantic
import pytest
from evaluations import evaluate
from test_record import VALID

from harness.records import schema as schema_module
from harness.records.model import Record
from harness.records.record import (
    SCHEMA_ID,
    SCHEMA_PATH,
    EvaluationRecord,
    InvalidRecord,
    RecordError,
    load_record,
    save_record,
    validate_record,
)
from harness.records.signing import KEY_ENV, KEY_FILE_ENV, generate_key, sign

DIGEST = "sha256:" + "d" * 64
LIMITS = {
    "cpus": 1.0,
    "memory": 2 * 1024**3,
    "gpus": 0,
    "gpu_memory": None,
    "wall_clock_s": 600.0,
    "pids": 256,
    "disk": 1024**3,
    "files": 10_000,
    "log_bytes": 1024**2,
    "tmp": 64 * 1024**2,
}


def phase(**changes: Any) -> dict[str, Any]:
    """A phase's figures with every key ``_phase_record`` writes (``PhaseResult`` less phase, log tail, series)."""
    figures = {
        "verdict": "OK",
        "message": "",
        "exit_code": 0,
        "wall_s": 1.234,
        "cpu_s": 0.5,
        "peak_memory_bytes": 50_000_000,
        "peak_pids": 3,
        "stdout_bytes": 12,
        "stderr_bytes": 0,
        "log_truncated": False,
        "output_bytes": 4096,
        "output_files": 1,
        "peak_tmp_bytes": None,
        "timeout_overshoot_s": None,
        "limits": dict(LIMITS),
        "node": "",
        "gpu_ids": [],
        "peak_gpu_memory_bytes": None,
        "peak_gpu_utilization": None,
    }
    return {**figures, **changes}


def full_record(**changes: Any) -> dict[str, Any]:
    """A record as ``Evaluation.conclude`` and ``save_record`` write it, every field filled."""
    record = {
        "schema": "harness.evaluation/1",
        "evaluation_id": "ev-0123456789ab",
        "round_id": "round-20261128T210000-abcdef",
        "attempt": 1,
        "competition": "digits",
        "submission": {
            "id": "sub-1",
            "team": "t",
            "image": "team/img:1",
            "image_digest": DIGEST,
            "submitted_at": "2026-11-28T20:59:00.000Z",
        },
        "verdict": "SCORED",
        "failed_phase": None,
        "message": "",
        "phases": {"train": phase(), "infer": phase()},
        "scores": {"public": {"accuracy": 0.9, "macro_f1": 0.88}, "private": {"accuracy": 0.91, "macro_f1": 0.87}},
        "manifest": {
            "data_sha256": "b" * 64,
            "config_sha256": "c" * 64,
            "config": {"seed": 42, "limits": {"train": LIMITS, "infer": LIMITS}},
            "image_digest": DIGEST,
            "harness_version": "0.2.0",
            "seed": 42,
            "host": {
                "hostname": "node-1",
                "cpu_model": "AMD EPYC",
                "cpu_cores": 2,
                "memory_bytes": 8 * 1024**3,
                "kernel": "6.1.0",
                "os": "Linux-6.1.0-x86_64-with-glibc2.36",
                "docker_version": "26.1.5",
            },
            "model_sha256": "e" * 64,
            "predictions_sha256": "f" * 64,
        },
        "mlflow_run_id": "0123456789abcdef0123456789abcdef",
        "created_at": "2026-11-28T21:00:00.000Z",
        "origin": None,
        "history": [],
    }
    return {**record, **changes}


def gpu_record() -> dict[str, Any]:
    record = full_record()
    record["phases"]["train"] = phase(
        gpu_ids=["0"], peak_gpu_memory_bytes=3 * 1024**3, peak_gpu_utilization=87.5, limits={**LIMITS, "gpus": 1, "gpu_memory": 8 * 1024**3}
    )
    record["manifest"]["host"].update(
        gpu_driver="570.86", gpus=[{"name": "NVIDIA H200", "uuid": "GPU-1234", "memory_bytes": 141 * 1024**3}]
    )
    return record


def rescored_record() -> dict[str, Any]:
    old = {"public": {"accuracy": 0.5}, "private": {"accuracy": 0.4}}
    entry = {
        "replaced_at": "2026-11-29T08:00:00.000Z",
        "reason": "rescore",
        "verdict": "SCORED",
        "failed_phase": None,
        "message": "",
        "scores": old,
    }
    failed = {**entry, "verdict": "INVALID_PREDICTIONS", "failed_phase": "score", "message": "wrong header", "scores": {}}
    return full_record(history=[failed, entry])


ORGANIZER_KEY = generate_key()


def signed_record() -> dict[str, Any]:
    record = full_record()
    record["signature"] = sign(record, ORGANIZER_KEY)
    return record


def hmac_signed_record() -> dict[str, Any]:
    """Signed before records were signed with Ed25519: still a valid record."""
    record = full_record()
    record["signature"] = sign(record, b"organizer-key")
    return record


RECORDS = {
    "minimal (test_record.VALID)": lambda: copy.deepcopy(VALID),
    "full": full_record,
    "check (no round, no submitted_at)": lambda: full_record(
        round_id=None, mlflow_run_id=None, submission={"id": "check-1", "team": "local-check", "image": "img", "image_digest": DIGEST}
    ),
    "intake refused": lambda: full_record(
        verdict="INVALID_IMAGE",
        failed_phase="intake",
        message="the image is not linux/amd64",
        phases={},
        scores={},
        submission={"id": "check-1", "team": "local-check", "image": "img", "image_digest": None},
        manifest={**full_record()["manifest"], "image_digest": None, "model_sha256": None, "predictions_sha256": None},
    ),
    "timeout": lambda: full_record(
        verdict="TIMEOUT",
        failed_phase="train",
        message="train ran past its wall-clock limit of 600 s and was killed",
        phases={"train": phase(verdict="TIMEOUT", exit_code=None, timeout_overshoot_s=0.31, message="killed", peak_tmp_bytes=0)},
        scores={},
    ),
    "infra error on a retry": lambda: full_record(
        attempt=2,
        verdict="INFRA_ERROR",
        failed_phase="infer",
        phases={"train": phase(node="abc123"), "infer": phase(verdict="INFRA_ERROR")},
    ),
    "audit repeat": lambda: full_record(origin={"kind": "audit", "evaluation_id": "ev-0000", "audit_id": "audit-20261128T210000-abcdef"}),
    "re-infer": lambda: full_record(origin={"kind": "reinfer", "evaluation_id": "ev-0000"}),
    "rescored": rescored_record,
    "signed": signed_record,
    "signed with the legacy HMAC": hmac_signed_record,
    "GPU": gpu_record,
    "host cores unknown": lambda: full_record(manifest={**full_record()["manifest"], "host": {"cpu_cores": None}}),
    "a phase field added later": lambda: full_record(phases={"train": phase(backend="docker")}),
}


def test_checked_in_schema_is_what_the_models_generate():
    """Edit ``harness/records/model.py``, then run ``python -m harness.records.schema``."""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_module.render(), (
        f"{SCHEMA_PATH} drifted from harness/records/model.py: regenerate it with `python -m harness.records.schema`"
    )
    assert schema_module.main(["--check"]) == 0


def test_schema_check_tells_a_drifted_file(tmp_path, capsys):
    stale = tmp_path / "evaluation-1.schema.json"
    stale.write_text(json.dumps({"type": "object"}))
    assert schema_module.main(["--check", "--output", str(stale)]) == 1
    assert "differs from the models" in capsys.readouterr().err
    assert schema_module.main(["--output", str(stale)]) == 0
    assert schema_module.main(["--check", "--output", str(stale)]) == 0


def test_generated_schema_is_a_valid_draft_2020_12_schema_with_the_documented_requirements():
    schema = schema_module.record_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == SCHEMA_ID == schema["properties"]["schema"]["const"] and schema["additionalProperties"] is False
    defs = schema["$defs"]
    assert set(schema["required"]) == {
        "schema",
        "evaluation_id",
        "competition",
        "submission",
        "verdict",
        "failed_phase",
        "message",
        "phases",
        "scores",
        "manifest",
        "mlflow_run_id",
        "created_at",
    }
    assert set(defs["Submission"]["required"]) == {"id", "team", "image", "image_digest"}
    assert set(defs["PhaseRecord"]["required"]) == {
        "verdict",
        "exit_code",
        "wall_s",
        "cpu_s",
        "peak_memory_bytes",
        "stdout_bytes",
        "stderr_bytes",
        "log_truncated",
        "limits",
    }
    assert set(defs["Manifest"]["required"]) == {"data_sha256", "config_sha256", "harness_version", "seed", "host"}
    assert defs["Verdict"]["enum"] == [
        "SCORED",
        "TIMEOUT",
        "MEMORY_LIMIT",
        "OUTPUT_LIMIT",
        "RUNTIME_ERROR",
        "INFRA_ERROR",
        "INVALID_IMAGE",
        "INVALID_PREDICTIONS",
    ]
    for name in ("Submission", "Phases", "Scores", "Origin", "HistoryEntry", "Ed25519Signature", "HmacSignature"):
        assert defs[name]["additionalProperties"] is False, name
    described = [p for d in defs.values() for p in d.get("properties", {}).values()]
    assert all("description" in p for p in described)  # the schema documents the record


@pytest.mark.parametrize("make", RECORDS.values(), ids=RECORDS.keys())
def test_every_kind_of_record_validates_and_reads_back_typed(make):
    data = make()
    validate_record(data)
    model = Record.model_validate(data)
    assert model.model_dump(mode="json", by_alias=True, exclude_unset=True) == data  # nothing lost or added
    record = EvaluationRecord.from_model(model)
    assert record.to_dict() == {**record.to_dict(), **{k: v for k, v in data.items() if k != "signature"}}
    assert record.typed().verdict == data["verdict"]


def test_typed_access_beside_the_dicts():
    record = EvaluationRecord.from_dict(gpu_record())
    typed = record.typed()
    assert typed.phases.train.verdict == record.phases.train.verdict == "OK"
    assert typed.phases.train.limits.gpu_memory == record.phases.train.limits.gpu_memory == 8 * 1024**3
    assert typed.manifest.data_sha256 == record.manifest["data_sha256"]
    assert typed.manifest.host.gpus[0].name == "NVIDIA H200"
    assert typed.submission.id == record.submission.id
    assert typed.scores.public == record.scores["public"]
    assert typed.origin is None and typed.history == [] and typed.signature is None


def _field(make, mutate) -> str:
    broken = make()
    mutate(broken)
    with pytest.raises(InvalidRecord) as caught:
        validate_record(broken)
    with pytest.raises(pydantic.ValidationError):
        Record.model_validate(broken)
    assert isinstance(caught.value, jsonschema.ValidationError)  # what callers and tests/test_record.py catch
    return str(caught.value)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda r: r.update(verdict="GREAT"), "verdict: 'GREAT' is not one of"),
        (lambda r: r["phases"]["infer"].update(verdict="SCORED"), "phases.infer.verdict: 'SCORED' is not one of"),
        (lambda r: r.pop("manifest"), "the record: 'manifest' is a required property"),
        (lambda r: r["phases"]["train"].pop("wall_s"), "phases.train: 'wall_s' is a required property"),
        (lambda r: r["phases"]["train"]["limits"].pop("memory"), "phases.train.limits: 'memory' is a required property"),
        (lambda r: r["submission"].update(image_digest="latest"), "submission.image_digest"),
        (lambda r: r["manifest"].update(image_digest="sha256:" + "A" * 64), "manifest.image_digest"),
        (lambda r: r["manifest"].update(data_sha256="b" * 63), "manifest.data_sha256"),
        (lambda r: r["manifest"].update(model_sha256="md5:1"), "manifest.model_sha256"),
        (lambda r: r.update(surprise=1), "the record: Additional properties are not allowed ('surprise' was unexpected)"),
        (lambda r: r["submission"].update(extra="x"), "submission: Additional properties are not allowed ('extra' was unexpected)"),
        (lambda r: r["scores"].update(hidden={}), "scores: Additional properties are not allowed ('hidden' was unexpected)"),
        (lambda r: r["scores"]["public"].update(accuracy="0.9"), "scores.public.accuracy: '0.9' is not of type 'number'"),
        (lambda r: r.update(failed_phase="eval"), "failed_phase"),
        (lambda r: r.update(origin={"kind": "replay", "evaluation_id": "ev-0"}), "origin"),
        (lambda r: r.update(attempt=0), "attempt: 0 is less than the minimum of 1"),
        (lambda r: r["phases"]["train"].update(peak_gpu_utilization=101.0), "phases.train.peak_gpu_utilization"),
        (
            lambda r: r.update(history=[{"replaced_at": "2026-11-29T08:00:00Z", "reason": "rescore", "verdict": "X", "scores": {}}]),
            "history.0.verdict",
        ),
        (lambda r: r.update(signature={"algorithm": "hmac-sha256", "key_id": "k", "value": "nothex"}), "signature"),
        (lambda r: r.update(signature={"algorithm": "ed25519", "key_id": "k", "value": "ab" * 32}), "signature"),
        (lambda r: r.update(signature={"algorithm": "rsa", "key_id": "k", "value": "ab" * 64}), "signature"),
        (lambda r: r["manifest"]["host"].update(gpus=[{"name": 1}]), "manifest.host.gpus.0.name: 1 is not of type 'string'"),
    ],
)
def test_broken_records_are_refused_naming_the_field(mutate, named):
    assert named in _field(full_record, mutate)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda r: r.update(created_at="yesterday"), "created_at: Value error, 'yesterday' is not an ISO 8601 date and time"),
        (lambda r: r.update(created_at="2026-11-28T21:00:00"), "created_at: Value error, '2026-11-28T21:00:00' has no UTC offset"),
        (lambda r: r["submission"].update(submitted_at="soon"), "submission.submitted_at"),
        (lambda r: r["scores"]["public"].update(accuracy=float("nan")), "scores.public.accuracy"),
    ],
)
def test_what_the_schema_only_annotates_is_checked_by_the_model(mutate, named):
    assert named in _field(full_record, mutate)


def test_save_and_load_go_through_the_generated_schema(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    data = rescored_record()
    path = save_record(EvaluationRecord.from_dict(data), tmp_path)
    assert json.loads(path.read_text()) == data
    assert load_record(path).typed().history[0].verdict == "INVALID_PREDICTIONS"

    with pytest.raises(InvalidRecord, match="verdict"):
        save_record(EvaluationRecord.from_dict(full_record(verdict="GREAT")), tmp_path)
    assert not (tmp_path / "ev-0123456789ab.json").read_text().count("GREAT")  # the valid file is left as it was

    path.write_text(json.dumps({**data, "phases": {"train": {"verdict": "OK"}}}))
    with pytest.raises(RecordError, match=r"ev-0123456789ab.json is not a valid harness.evaluation/1 record: phases.train"):
        load_record(path)


@pytest.mark.docker
def test_a_real_evaluation_is_typed_to_the_last_key(competition, docker_client, behave_image, monkeypatch):
    """Every key a real evaluation writes is a field of the models (none slips in as an extra)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    digits = competition()
    record = evaluate(digits, docker_client, behave_image("constant"))
    path = digits.paths.records / f"{record.evaluation_id}.json"
    saved = json.loads(path.read_text())
    typed = load_record(path).typed()
    assert typed.model_dump(mode="json", by_alias=True, exclude_unset=True) == saved
    assert typed.verdict == "SCORED" and typed.phases.train.limits.wall_clock_s == digits.settings.limits.train.wall_clock_s
    models = [typed, typed.submission, typed.manifest, typed.manifest.host, typed.phases.train, typed.phases.infer]
    models += [typed.phases.train.limits, typed.phases.infer.limits]
    assert [m.model_extra for m in models if m.model_extra] == []
