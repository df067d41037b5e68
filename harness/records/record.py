"""The evaluation record (``harness.evaluation/1``): the scored artifact leaderboards are built from."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pydantic

from harness.records.model import Phases, Record, Submission
from harness.records.signing import Check, check, sign, signing_key, verification_keys
from harness.util.errors import HarnessError
from harness.util.files import write_json_atomic
from harness.util.redact import redact_manifest

SCHEMA_ID = "harness.evaluation/1"
# Generated from the typed models in harness/records/model.py: `python -m harness.records.schema`.
SCHEMA_PATH = Path(__file__).with_name("schema") / "evaluation-1.schema.json"
MAX_RECORD_BYTES = 16 * 1024 * 1024  # a record is a few kilobytes; a larger file is not one
# Which evaluations the ledger lists for each submission: {submission id: [evaluation id, ...]}.
Listing = Mapping[str, Collection[str]]

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_PATH",
    "EvaluationRecord",
    "InvalidRecord",
    "RecordError",
    "latest_record",
    "load_record",
    "read_record",
    "load_records",
    "records_to_rewrite",
    "save_record",
    "validate_record",
]


class RecordError(HarnessError):
    """A record cannot be used: its signature does not verify (``kind`` "signature"), or it is not a
    valid record (``kind`` "record")."""

    def __init__(self, message: str, kind: str, reason: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason or message  # what is wrong, without the file's name

    @classmethod
    def of(cls, path: Path, reason: str, kind: str = "record", suffix: str = "") -> RecordError:
        return cls(f"record {path.name} {reason}{suffix}", kind, reason)


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
    submission: Submission
    verdict: str
    failed_phase: str | None
    message: str
    phases: Phases
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
    # "smoke" when the smoke stage gave the verdict; None otherwise (the key is then left out).
    failed_stage: str | None = None
    # The smoke stage, when it ran: {train_rows, test_rows, data_sha256, phases}; None: left out.
    smoke: dict[str, Any] | None = None
    # The competition's phase it belongs to (harness.competition.phases); None: the competition
    # declares no phases (the key is then left out).
    phase: str | None = None

    def __post_init__(self) -> None:
        # No secret in a record: credentials leave the configuration before anything is written.
        if isinstance(self.manifest, dict):
            self.manifest = redact_manifest(self.manifest)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationRecord:
        """The record ``data`` holds, its submission and phases typed (a ``pydantic.ValidationError``
        when they are not valid)."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in data.items() if k in names}
        given["submission"] = Submission.model_validate(data["submission"])
        given["phases"] = Phases.model_validate(data["phases"])
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "evaluation_id": self.evaluation_id,
            "round_id": self.round_id,
            "attempt": self.attempt,
            "competition": self.competition,
            "submission": self.submission.model_dump(mode="json", exclude_unset=True),
            "verdict": self.verdict,
            "failed_phase": self.failed_phase,
            "message": self.message,
            "phases": self.phases.model_dump(mode="json", exclude_unset=True),
            "scores": self.scores,
            "manifest": self.manifest,
            "mlflow_run_id": self.mlflow_run_id,
            "created_at": self.created_at,
            "origin": self.origin,
            "history": self.history,
            **({"failed_stage": self.failed_stage} if self.failed_stage is not None else {}),
            **({"smoke": self.smoke} if self.smoke is not None else {}),
            **({"phase": self.phase} if self.phase is not None else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def typed(self) -> Record:
        """The record as its typed model (``record.typed().phases.train.verdict``); raises
        ``pydantic.ValidationError`` when it is not a valid record."""
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
    validate_record(data)  # before signing: what cannot be a record (a NaN score) is never signed
    key = signing_key()
    if key is not None:
        data["signature"] = sign(data, key)
    path = directory / f"{record.evaluation_id}.json"
    write_json_atomic(path, data)
    return path


def read_record(path: Path) -> dict[str, Any]:
    """A record file's JSON object, read without following a link; a ``RecordError`` (kind
    "record") naming the file when it is not a regular file, too large, not JSON or not an object."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        why = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror  # ELOOP: O_NOFOLLOW met a link
        raise RecordError.of(path, f"cannot be read ({why})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RecordError.of(path, "is not a regular file")
        if info.st_size > MAX_RECORD_BYTES:
            raise RecordError.of(path, f"is {info.st_size} bytes, more than a record can be")
        raw = fh.read(MAX_RECORD_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError.of(path, f"is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError.of(path, f"is not a record (a JSON {type(data).__name__}, not an object)")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def checked_record(path: Path, keys: list | None = None) -> dict[str, Any]:
    """A record file's data once it proved a valid record, named after its evaluation, and signed
    with the organizer's key when a key is configured (``keys``: ``verification_keys()`` by default);
    a ``RecordError`` naming the file otherwise."""
    data = read_record(path)
    keys = verification_keys() if keys is None else keys
    if keys and (state := check(data, *keys)) is not Check.VALID:
        raise RecordError.of(path, f"is {state.value}", "signature", ": it is left as it is (see `harness verify`)")
    try:
        validate_record(data)
    except InvalidRecord as exc:
        raise RecordError.of(path, f"is {exc}", "record", ": it is left as it is") from None
    if data["evaluation_id"] != path.stem:
        raise RecordError.of(path, f"holds evaluation {data['evaluation_id']!r}, not {path.stem!r}", "record", ": it is left as it is")
    return data


def load_record(path: Path) -> EvaluationRecord:
    """A record to work on (and maybe write again): valid, and with an organizer key configured,
    only one whose signature verifies, so that rewriting never signs a forged or altered record."""
    return EvaluationRecord.from_dict(checked_record(path))


def unlisted(data: dict[str, Any], listed: Listing | None, *, strict: bool) -> str | None:
    """Why the ledger does not back this record, or None. ``strict``: a submission the ledger does
    not know does not count either (the leaderboard); otherwise only a known submission's records
    are held to its list (an audit, a rescore)."""
    if listed is None:
        return None
    submission = data["submission"]["id"]
    if submission not in listed:
        return f"the ledger has no submission {submission!r}" if strict else None
    if data["evaluation_id"] not in listed[submission]:
        return f"the ledger lists no evaluation {data['evaluation_id']!r} for submission {submission!r}"
    return None


def records_to_rewrite(directory: Path, listed: Listing | None = None) -> Iterator[tuple[str, EvaluationRecord | None, str]]:
    """``(file stem, record, "")`` for each record file, or ``(stem, None, why)`` when it cannot be
    worked on (invalid, not signed with the organizer's key, or not the ledger's)."""
    keys = verification_keys()
    for path in sorted(directory.glob("*.json")):
        try:
            data = checked_record(path, keys)
        except RecordError as exc:
            yield path.stem, None, str(exc)
            continue
        why = unlisted(data, listed, strict=False)
        yield (path.stem, None, f"record {path.name}: {why}") if why else (path.stem, EvaluationRecord.from_dict(data), "")


def latest_record(directory: Path, key: str, listed: Listing | None = None, warn: Callable[[str], None] | None = None) -> Path | None:
    """The file of evaluation ``key``, or of submission ``key``'s latest valid evaluation (among
    those the ledger lists, when ``listed`` knows the submission); None if none."""
    if (directory / f"{key}.json").is_file() or (directory / f"{key}.json").is_symlink():
        return directory / f"{key}.json"
    found = [
        (data["created_at"], path) for path, data in _records(directory, listed, strict=False, warn=warn) if data["submission"]["id"] == key
    ]
    return max(found)[1] if found else None


def load_records(directory: Path, *, listed: Listing | None = None, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The records in ``directory`` that can be trusted: valid, signed with the organizer's key when
    a key is configured, and, with ``listed`` (the ledger's evaluations per submission), only those
    the ledger lists for their submission. Every other file is skipped with a warning naming it
    (``warn``; standard error by default), never counted and never a traceback."""
    return [data for _, data in _records(directory, listed, strict=True, warn=warn)]


def _records(
    directory: Path, listed: Listing | None, *, strict: bool, warn: Callable[[str], None] | None
) -> list[tuple[Path, dict[str, Any]]]:
    warn, keys, records = warn or _warn, verification_keys(), []
    for path in sorted(directory.glob("*.json")):
        try:
            data = checked_record(path, keys)
        except RecordError as exc:
            warn(f"{directory.name}/{path.name} skipped: {exc.reason}")
            continue
        if why := unlisted(data, listed, strict=strict):
            warn(f"{directory.name}/{path.name} skipped: {why}")
            continue
        records.append((path, data))
    return records


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)
