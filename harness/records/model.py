"""The evaluation record ``harness.evaluation/1`` as typed models: the one source of its JSON Schema.

``harness/records/schema/evaluation-1.schema.json`` is generated from these models
(``python -m harness.records.schema``); a test fails when the checked-in file drifts from them.

Closed objects (the record, ``submission``, ``phases``, ``scores``, ``origin``, ``history`` entries,
the signatures) refuse unknown keys; open ones (``manifest``, ``manifest.host``, a phase's ``host``, a phase's figures and
its ``limits``) type the keys they know and keep any others. A key that may be absent but is never
null when present (``origin.audit_id``, ``manifest.host.gpus``, …) reads as None here when absent;
the schema does not accept an explicit null for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from harness.limits import PhaseVerdict, Verdict

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ImageDigest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]


def _as_given(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    checked = handler(value)
    return value if type(value) is int else checked


# A number kept as it was given: a whole number stays one (pydantic makes a float of it), so a record
# read and written again keeps its bytes. Constraints go before it (``Annotated[float, Field(ge=0), *AS_GIVEN]``).
AS_GIVEN = (WrapValidator(_as_given), PlainSerializer(lambda value: value))
Number = Annotated[float, *AS_GIVEN]
Seconds = Annotated[float, Field(ge=0), *AS_GIVEN]
Percent = Annotated[float, Field(ge=0, le=100), *AS_GIVEN]
Name = Annotated[str, StringConstraints(min_length=1)]
FailedPhase = Literal["intake", "train", "infer", "score"]
Metrics = Annotated[
    dict[str, Annotated[float, Field(allow_inf_nan=False)]],
    Field(description="metric name -> value, e.g. {accuracy: 0.93}"),
]


def _timestamp(value: str) -> str:
    """An RFC 3339 time with its offset, as the harness writes them (``2026-11-28T21:00:00.000Z``)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return value


Timestamp = Annotated[str, AfterValidator(_timestamp), Field(json_schema_extra={"format": "date-time"})]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(description: str) -> Any:
    """A key that may be absent, never null when present: None in the model, no ``null`` in the schema.
    Annotate it ``T | SkipJsonSchema[None]`` (constraints go on ``T``)."""
    return Field(None, description=description, json_schema_extra=_no_default)


class _Ordered(BaseModel):
    """Dumps its keys in the order it was given them: a record read and written again keeps its bytes
    (an open object's keys, a node's host facts, keep their places instead of moving to the end)."""

    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, dict) and isinstance(model, _Ordered):
            model._order = tuple(data)
        return model

    @model_serializer(mode="wrap")
    def _in_given_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)
        return {**{key: dumped[key] for key in self._order if key in dumped}, **dumped}


class _Closed(_Ordered):
    # Strict: no "0.9" for a number or "true" for a boolean, as in the schema (verdicts are read from their values).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class _Open(_Ordered):
    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)


class Submission(_Closed):
    """The submission evaluated, as the ledger (or ``harness check``) handed it over."""

    id: Name = Field(description="the submission's id (``sub-…``; ``check-…`` for a local check)")
    team: Name = Field(description="the team that submitted it")
    image: str = Field(description="the image reference as submitted")
    image_digest: ImageDigest | None = Field(
        description="the content digest the image was pinned to at intake; null when intake refused it"
    )
    submitted_at: Timestamp | None = Field(None, description="when it was submitted (UTC); absent for a local check")


class Gpu(_Open):
    """One GPU of the host, as NVML names it."""

    name: str | SkipJsonSchema[None] = optional("the GPU's model name")
    uuid: str | SkipJsonSchema[None] = optional("the GPU's UUID")
    memory_bytes: Count | SkipJsonSchema[None] = optional("the GPU's memory")


class Host(_Open):
    """A machine's facts: the one the record was made on (``manifest.host``), or the node that ran a phase."""

    hostname: str | SkipJsonSchema[None] = optional("the host's name")
    cpu_model: str | SkipJsonSchema[None] = optional("the CPU model")
    cpu_cores: Count | None = Field(None, description="logical CPU cores; null when psutil cannot tell")
    memory_bytes: Count | SkipJsonSchema[None] = optional("physical memory")
    kernel: str | SkipJsonSchema[None] = optional("the kernel release")
    os: str | SkipJsonSchema[None] = optional("the operating system")
    docker_version: str | SkipJsonSchema[None] = optional("the Docker engine's version; empty when unknown")
    docker_root_dir: str | SkipJsonSchema[None] = optional("the Docker engine's data root (a node's phase host only)")
    cgroup_version: str | SkipJsonSchema[None] = optional("the cgroup version the engine runs on: 1 or 2 (a node's phase host only)")
    cgroup_driver: str | SkipJsonSchema[None] = optional("the engine's cgroup driver: cgroupfs or systemd (a node's phase host only)")
    gpu_driver: str | SkipJsonSchema[None] = optional("the GPU driver's version, where NVML answers")
    gpus: list[Gpu] | SkipJsonSchema[None] = optional("the host's GPUs, where NVML answers")


class PhaseLimitsRecord(_Open):
    """The limits a phase ran under (``limits.<phase>`` of the configuration, sizes in bytes)."""

    cpus: Number = Field(gt=0, description="CPU cores")
    memory: Count = Field(description="memory limit, bytes")
    gpus: Count = Field(description="GPUs given to the phase")
    gpu_memory: Count | None = Field(description="GPU memory limit, bytes; null for none")
    wall_clock_s: Number = Field(gt=0, description="wall-clock limit, seconds")
    pids: int = Field(ge=1, description="most processes at once")
    disk: Count = Field(description="most bytes the phase may write where it may write")
    files: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = optional("most files the phase may write")
    log_bytes: Count = Field(description="stdout and stderr kept, bytes each")
    tmp: Count | SkipJsonSchema[None] = optional("size of the phase's /tmp, bytes")


class PhaseRecord(_Open):
    """What one phase (``train`` or ``infer``) did, as the runner measured it (``PhaseResult`` without
    its log tail and telemetry series, which go to MLflow)."""

    verdict: PhaseVerdict = Field(strict=False, description="the phase's verdict")
    message: str = Field("", description="why, when not OK")
    exit_code: int | None = Field(description="the container's exit code; null when it never exited on its own")
    wall_s: Seconds = Field(description="wall-clock time, seconds")
    cpu_s: Seconds = Field(description="CPU time, seconds")
    peak_memory_bytes: Count = Field(description="most memory in use")
    peak_pids: Count = Field(0, description="most processes at once")
    stdout_bytes: Count = Field(description="bytes written to stdout")
    stderr_bytes: Count = Field(description="bytes written to stderr")
    log_truncated: bool = Field(description="whether the logs were cut at limits.log_bytes")
    output_bytes: Count = Field(0, description="bytes written where the phase may write (/model, /output)")
    output_files: Count = Field(0, description="files written there")
    peak_tmp_bytes: Count | None = Field(None, description="most bytes seen on /tmp; null where the container's root is not visible")
    timeout_overshoot_s: Number | None = Field(
        None, description="seconds between the wall-clock limit and the container's end, when it was killed for it"
    )
    limits: PhaseLimitsRecord = Field(description="the limits the phase ran under")
    node: str = Field("", description="the node (Ray node or host) the phase ran on")
    started_at: str | SkipJsonSchema[None] = optional("when its container started (UTC, ISO 8601, the engine's clock)")
    ended_at: str | SkipJsonSchema[None] = optional("when its container ended (UTC, ISO 8601, the engine's clock)")
    host: Host | SkipJsonSchema[None] = optional("the facts of the Ray node that ran the phase, measured there; absent off a cluster")
    gpu_ids: list[str] = Field(
        default_factory=list, description="the GPUs the phase was given (NVML indices or UUIDs); empty for a CPU phase"
    )
    peak_gpu_memory_bytes: Count | None = Field(
        None, description="most GPU memory in use; null for a CPU phase, and where NVML never answered (unknown, never 0)"
    )
    peak_gpu_utilization: Percent | None = Field(
        None,
        description="GPU utilization in percent, mean over the phase's GPUs that NVML measures; null for a CPU phase, "
        "and where NVML measures none (MIG devices) or never answered",
    )


class Phases(_Closed):
    """The phases that ran (or were carried over from an earlier evaluation, for a re-infer)."""

    train: PhaseRecord | SkipJsonSchema[None] = optional("the train phase; absent when it did not run")
    infer: PhaseRecord | SkipJsonSchema[None] = optional("the infer phase; absent when it did not run")

    def ran(self) -> dict[str, PhaseRecord]:
        """The phases that ran, by name: train first."""
        return {name: phase for name, phase in (("train", self.train), ("infer", self.infer)) if phase is not None}


class Smoke(_Closed):
    """The smoke stage that ran before the full phases: a few training rows, its own short limits."""

    train_rows: Count = Field(description="training rows the smoke train phase got")
    test_rows: Count = Field(description="training rows, without their target, the smoke infer phase predicted")
    data_sha256: Sha256 = Field(
        description="tree hash of the smoke data (its train and test directories and its labels), carved from the training data"
    )
    phases: Phases = Field(description="the smoke phases that ran, their limits the smoke limits")


class Scores(_Closed):
    """Scores on the public and private parts of the test set; empty unless the verdict is SCORED."""

    public: Metrics | SkipJsonSchema[None] = optional("scores on the public part (shown during the competition)")
    private: Metrics | SkipJsonSchema[None] = optional("scores on the private part (the final ranking)")


class Environment(_Closed):
    """The Python environment of the harness that made the record: `harness audit` names what differs in its own."""

    sha256: Sha256 = Field(description="SHA-256 of the Python version and the sorted name==version lines of every installed distribution")
    python: str = Field(description="the Python version the harness ran on")
    packages: dict[str, str] = Field(description="every installed distribution: canonical name -> version")


class Manifest(_Open):
    """What is needed to reproduce the evaluation."""

    data_sha256: Sha256 = Field(description="tree hash of the data: data/train, data/test and hidden/ (labels), by path and SHA-256")
    config_sha256: Sha256 = Field(description="SHA-256 of the resolved configuration's sorted YAML")
    config: dict[str, Any] | SkipJsonSchema[None] = optional("the resolved configuration config_sha256 is the hash of")
    image_digest: ImageDigest | None = Field(None, description="the image's content digest the phases ran")
    harness_version: str = Field(description="the harness release that made the record")
    environment: Environment | SkipJsonSchema[None] = optional(
        "the harness's Python environment that made the record (absent in records made before 0.2.1)"
    )
    seed: int = Field(description="the HARNESS_SEED the containers got")
    host: Host = Field(description="the machine the record was made on")
    model_sha256: Sha256 | None = Field(None, description="tree hash of the model directory after a successful train; null otherwise")
    predictions_sha256: Sha256 | None = Field(
        None,
        description="SHA-256 of the predictions file after a successful infer, when it is a regular file within predictions.max_bytes; null otherwise",
    )


class Origin(_Closed):
    """What made an evaluation that is not a round's."""

    kind: Literal["audit", "reinfer", "rerun"] = Field(
        description="an audit's repeat, a re-infer on a replaced test set, or a winner's re-run with another seed before finalize"
    )
    evaluation_id: str = Field(description="audit, rerun: the evaluation run again; reinfer: the one that trained the model")
    audit_id: str | SkipJsonSchema[None] = optional("the audit this repeat belongs to (audit only)")
    rerun_id: str | SkipJsonSchema[None] = optional("the winners' re-run this run belongs to (rerun only)")


class HistoryEntry(_Closed):
    """An outcome a rescore, or a re-infer forced after finalize, replaced."""

    replaced_at: Timestamp = Field(description="when it was replaced (UTC)")
    reason: str = Field(
        description='what replaced it: rescore (marked when forced after finalize), a forced re-infer, "withdrawn: REASON" or "disqualified: REASON"'
    )
    verdict: Verdict = Field(strict=False, description="the verdict it had")
    failed_phase: FailedPhase | None = Field(None, description="the failed phase it had")
    message: str | SkipJsonSchema[None] = optional("the message it had")
    scores: Scores = Field(description="the scores it had")


class Ed25519Signature(_Closed):
    """The organizer's Ed25519 signature over the record's canonical JSON (sorted keys, no whitespace,
    the signature left out); anyone holding the published public key can check it."""

    algorithm: Literal["ed25519"] = Field(description="the signature algorithm")
    key_id: str = Field(description="fingerprint of the public key that checks it")
    value: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")] = Field(description="the signature, hex")


class HmacSignature(_Closed):
    """Legacy: the organizer's HMAC-SHA256 over the record's canonical JSON; only the key's holder can check it."""

    algorithm: Literal["hmac-sha256"] = Field(description="the MAC algorithm")
    key_id: str = Field(description="fingerprint of the key that signed (not the key)")
    value: Sha256 = Field(description="the MAC, hex")


Signature = Annotated[Ed25519Signature | HmacSignature, Field(discriminator="algorithm")]


class Record(_Closed):
    """One evaluation of one submission: verdict, per-phase figures, scores and the manifest needed to
    reproduce it."""

    schema_: Literal["harness.evaluation/1"] = Field(alias="schema", description="the record's schema and version")
    evaluation_id: Name = Field(description="the evaluation's id (``ev-…``); the record's file is named after it")
    round_id: str | None = Field(None, description="the round, audit or re-infer batch that made it; null for a local check")
    attempt: int = Field(1, ge=1, description="which attempt of the submission this is (infrastructure failures are retried)")
    competition: Name = Field(description="the competition's name")
    submission: Submission
    verdict: Verdict = Field(strict=False, description="SCORED, the first failing phase's verdict, INVALID_IMAGE or INVALID_PREDICTIONS")
    failed_phase: FailedPhase | None = Field(description="where it failed; null when SCORED")
    failed_stage: Literal["smoke"] | SkipJsonSchema[None] = optional(
        "smoke when the verdict came from the smoke stage (phases are then the smoke phases); absent otherwise"
    )
    phase: Name | SkipJsonSchema[None] = optional(
        "the competition's phase the evaluation belongs to (competition.phases); absent when the competition declares none"
    )
    message: str = Field(description="why it failed, or empty")
    phases: Phases = Field(description="the phases of the stage that gave the verdict: the full ones, or the smoke ones (failed_stage)")
    smoke: Smoke | SkipJsonSchema[None] = optional("the smoke stage, when the competition has one and it ran")
    scores: Scores
    manifest: Manifest
    mlflow_run_id: str | None = Field(description="the evaluation's MLflow run; null until it is uploaded")
    created_at: Timestamp = Field(description="when the record was made (UTC)")
    origin: Origin | None = Field(None, description="what made it when not a round (an audit or a re-infer); null otherwise")
    history: list[HistoryEntry] = Field(
        default_factory=list, description="verdicts and scores this record had before it was rescored, oldest first"
    )
    signature: Signature | SkipJsonSchema[None] = optional(
        "the organizer's signature (ed25519; hmac-sha256 on records signed before), when a key is configured"
    )
