"""The evaluation record (``harness.evaluation/1``): the scored artifact leaderboards are built from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from harness.records.signing import Check, check, sign, signing_key
from harness.util.errors import HarnessError
from harness.util.files import write_json_atomic

if TYPE_CHECKING:
    from harness.records.model import Record

SCHEMA_ID = "harness.evaluation/1"
# Generated from the typed models in harness/records/model.py: `python -m harness.records.schema`.
SCHEMA_PATH = Path(__file__).with_name("schema") / "evaluation-1.schema.json"

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_PATH",
    "EvaluationRecord",
    "InvalidRecord",
    "RecordError",
    "latest_record",
    "load_record",
    "load_records",
    "records_to_rewrite",
    "save_record",
    "validate_record",
]


class RecordError(HarnessError):
    """A record cannot be used: its signature does not verify (``kind`` "signature"), or it is not a
    valid record (``kind`` "record")."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class InvalidRecord(jsonschema.ValidationError):
    """Not a valid ``harness.evaluation/1`` record; the message names the field (``phases.train.wall_s``)."""

    @property
    def field(self) -> str:
        return ".".join(str(part) for part in self.absolute_path)

    def __str__(self) -> str:
        return f"not a valid {SCHEMA_ID} record: {self.field or 'the record'}: {self.message}"


@dataclass
class EvaluationRecord:
    evaluation_id: str
    competition: str
    submission: dict[str, Any]
    verdict: str
    failed_phase: str | None
    message: str
    phases: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, float]]
    manifest: dict[str, Any]
    created_at: str
    mlflow_run_id: str | None = None
    round_id: str | None = None
    attempt: int = 1
    # What made this evaluation when not a round: {"kind": "audit"|"reinfer", "evaluation_id": ...}.
    origin: dict[str, Any] | None = None
    # Earlier verdicts and scores this record replaced (rescoring), oldest first.
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "evaluation_id": self.evaluation_id,
            "round_id": self.round_id,
            "attempt": self.attempt,
            "competition": self.competition,
            "submission": self.submission,
            "verdict": self.verdict,
            "failed_phase": self.failed_phase,
            "message": self.message,
            "phases": self.phases,
            "scores": self.scores,
            "manifest": self.manifest,
            "mlflow_run_id": self.mlflow_run_id,
            "created_at": self.created_at,
            "origin": self.origin,
            "history": self.history,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def typed(self) -> Record:
        """The record as its typed model (``record.typed().phases.train.verdict``); raises
        ``pydantic.ValidationError`` when it is not a valid record."""
        from harness.records.model import Record  # pydantic only where a record is validated or typed

        return Record.model_validate(self.to_dict())

    @classmethod
    def from_model(cls, model: Record) -> EvaluationRecord:
        """The record a typed model holds, with exactly the keys the model was given."""
        return cls.from_dict(model.model_dump(mode="json", by_alias=True, exclude_unset=True))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate_record(data: dict[str, Any]) -> None:
    """Raise ``InvalidRecord`` (a ``jsonschema.ValidationError``) naming the field when ``data`` is not a
    valid record: checked against the schema generated from the models, then read into the model
    (which also checks what the schema only annotates, such as the timestamps' format)."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        raise InvalidRecord.create_from(error)
    import pydantic

    from harness.records.model import Record

    try:
        Record.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = _data_path(data, first["loc"])
        raise InvalidRecord(first["msg"], path=path, instance=first.get("input"), validator="model") from None


def _data_path(data: Any, loc: tuple[int | str, ...]) -> list[int | str]:
    """A pydantic error's location as keys into ``data``, without the union members it names."""
    path: list[int | str] = []
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            path.append(part)
    return path


def save_record(record: EvaluationRecord, directory: Path) -> Path:
    """Validate, sign with the organizer's key when one is configured, write atomically."""
    data = record.to_dict()
    key = signing_key()
    if key is not None:
        data["signature"] = sign(data, key)
    validate_record(data)
    path = directory / f"{record.evaluation_id}.json"
    write_json_atomic(path, data)
    return path


def load_record(path: Path) -> EvaluationRecord:
    """A record to work on (and maybe write again): with an organizer key configured, only one whose
    signature verifies, so that rewriting never signs a forged or altered record."""
    data = json.loads(path.read_text(encoding="utf-8"))
    key = signing_key()
    if key is not None and (state := check(data, key)) is not Check.VALID:
        raise RecordError(f"record {path.name} is {state.value}: it is left as it is (see `harness verify`)", "signature")
    try:
        validate_record(data)
    except InvalidRecord as exc:
        raise RecordError(f"record {path.name} is {exc}: it is left as it is", "record") from None
    return EvaluationRecord.from_dict(data)


def records_to_rewrite(directory: Path) -> Iterator[tuple[str, EvaluationRecord | None, str]]:
    """``(file stem, record, "")`` for each record file, or ``(stem, None, why)`` when it cannot be worked on."""
    for path in sorted(directory.glob("*.json")):
        try:
            yield path.stem, load_record(path), ""
        except (OSError, ValueError, TypeError, RecordError) as exc:
            yield path.stem, None, str(exc)


def latest_record(directory: Path, key: str) -> Path | None:
    """The file of evaluation ``key``, or of submission ``key``'s latest evaluation; None if none."""
    if (directory / f"{key}.json").is_file():
        return directory / f"{key}.json"
    found = [(r["created_at"], path) for path, r in _records(directory) if r.get("submission", {}).get("id") == key]
    return max(found)[1] if found else None


def load_records(directory: Path) -> list[dict[str, Any]]:
    return [record for _, record in _records(directory)]


def _records(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError):
            continue  # a foreign or damaged file is not a record; the leaderboard skips it
    return records
