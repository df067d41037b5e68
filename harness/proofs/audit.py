"""``harness audit``: run a submission again from its record alone and list every difference.

The audit refuses (runs nothing) when the record is not a valid record, its signature does not
verify (a key is configured), the ledger does not list it for its submission, the data differ
from the record's (naming each file), or the image is gone. Otherwise it runs the evaluation
``repeats`` times with the recorded configuration and seed, and compares verdicts, model and
prediction hashes and scores with the record (a difference fails the audit), and the host and the
harness version (noted). Two or more repeats also say whether the submission is deterministic.
It restores the record's model from the artifact store too: one that does not hash as recorded
fails the audit, one the store does not hold is noted. Nothing here needs the node that trained it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.competition.config import settings_from_config
from harness.competition.core import Competition
from harness.competition.data_manifest import changes_since
from harness.competition.smoke import smoke_stage
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import local_backend, missing_image, run_phases
from harness.evaluation.recording import record_evaluation
from harness.proofs.audit_report import render_html, render_text
from harness.records.model_store import ModelDamaged, ModelStore, ModelStoreError
from harness.records.record import EvaluationRecord, RecordError, latest_record, load_record, unlisted
from harness.records.sinks import RecordSinks
from harness.records.tracking import flat_params
from harness.results import Results
from harness.runner.backend import Backend
from harness.util.clock import stamped_id, utc_now
from harness.util.environment import environment_changes
from harness.util.errors import ConfigError, HarnessError
from harness.util.files import write_json_atomic
from harness.util.redact import redact_config

PASS, FAIL, REFUSED = "PASS", "FAIL", "REFUSED"
# Configuration that says where and how the harness runs, not what a submission is evaluated with.
RUN_PLACE_KEYS = ("runner.", "tracking.", "images.")


@dataclass(frozen=True)
class Difference:
    kind: str  # data, image, signature, record, config, verdict, hashes, scores, host, harness
    what: str  # the file, key, hash or metric
    recorded: Any
    observed: Any
    fatal: bool = True


@dataclass
class AuditReport:
    audit_id: str
    competition: str
    submission: dict[str, Any]
    evaluation_id: str
    repeats: int
    created_at: str = field(default_factory=utc_now)
    status: str = PASS
    reason: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    deterministic: bool | None = None
    spread: dict[str, dict[str, float]] = field(default_factory=dict)  # "public.accuracy" -> min, max, mean, stdev
    differences: list[Difference] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "harness.audit/1", **asdict(self)}


def audit(
    competition: Competition,
    key: str,
    backend: Backend | None = None,
    sinks: RecordSinks | None = None,
    *,
    repeats: int = 1,
    overrides: list[str] | tuple[str, ...] = (),
    out: TextIO | None = None,
) -> AuditReport:
    """Audit the record of evaluation ``key`` (or submission ``key``'s latest) and save the report;
    the reruns run on ``backend`` (None: the recorded competition's ``runner.backend`` here)."""
    out = out or sys.stderr  # looked up when called: standard error may have been replaced since import
    sinks = sinks or RecordSinks()
    if repeats < 1:
        raise HarnessError(f"--repeats must be at least 1, got {repeats}")
    listed = Results(competition).listing()
    path = latest_record(competition.paths.records, key, listed)
    if path is None:
        raise HarnessError(f"no evaluation record for {key!r} in {competition.name} (give a submission or evaluation id)")
    audit_id = stamped_id("audit")
    try:
        record = load_record(path)
        if why := unlisted(record.to_dict(), listed, strict=False):
            raise RecordError(f"record {path.name}: {why}", "record")
    except RecordError as exc:
        report = AuditReport(audit_id, competition.name, {"id": key}, path.stem, repeats)
        expected = "signed with the organizer's key" if exc.kind == "signature" else "a valid record the ledger lists"
        report.differences.append(Difference(exc.kind, path.name, expected, str(exc)))
        return _finish(report, competition, sinks, None)
    report = AuditReport(
        audit_id, competition.name, record.submission.model_dump(mode="json", exclude_unset=True), record.evaluation_id, repeats
    )
    report.differences += data_differences(competition.for_phase(record.phase), record)
    image = record.manifest.get("image_digest") or record.submission.image_digest
    if (problem := missing_image(backend or local_backend(competition), image)) is not None:
        report.differences.append(Difference("image", "image_digest", image, problem))
    audited, config_differences = recorded_competition(competition, record, overrides)
    audited = audited.for_phase(record.phase)  # its phase's test set and labels
    report.differences += config_differences
    if any(d.fatal for d in report.differences):
        return _finish(report, competition, sinks, record)
    backend = backend or local_backend(audited)
    docker_version = backend.engine_version()
    reruns = []
    smoke = smoke_stage(audited)  # worked out once for every repeat
    for n in range(1, repeats + 1):
        print(f"audit {report.audit_id}: repeat {n} of {repeats}", file=out, flush=True)
        evaluation = Evaluation(audited, record.submission, round_id=report.audit_id, smoke=smoke)
        evaluation.origin = {"kind": "audit", "evaluation_id": record.evaluation_id, "audit_id": report.audit_id}
        run_phases(evaluation, backend, out, record.submission.image or str(image))
        rerun = record_evaluation(evaluation, audit_dir(competition, report.audit_id), RecordSinks(), docker_version)
        reruns.append(rerun)
        report.runs.append(
            {
                "evaluation_id": rerun.evaluation_id,
                "verdict": rerun.verdict,
                "scores": rerun.scores,
                **{k: rerun.manifest.get(k) for k in ("model_sha256", "predictions_sha256", "config_sha256")},
            }
        )
        report.differences += compare(record, rerun, f"repeat {n}", with_host=n == 1)
    report.differences += archived_model_differences(competition, record)
    if repeats > 1:
        report.deterministic = len({r.manifest.get("predictions_sha256") for r in [record, *reruns]}) == 1
        report.spread = score_spread([record, *reruns])
    return _finish(report, competition, sinks, record)


def data_differences(competition: Competition, record: EvaluationRecord) -> list[Difference]:
    """Each data file that differs from the data the record was made on (one entry when the
    record's snapshot of the data is not kept here)."""
    recorded = record.manifest["data_sha256"]
    changes = changes_since(competition.paths.root, competition.data_manifest, recorded)
    if changes is None:
        return [
            Difference("data", "data_sha256 (no per-file manifest of the recorded data is kept here)", recorded, competition.data_sha256)
        ]
    return [Difference("data", f"{c.path} ({c.change})", c.recorded, c.current) for c in changes]


def archived_model_differences(competition: Competition, record: EvaluationRecord) -> list[Difference]:
    """Whether the artifact store holds the model the record names, intact (restored and hashed):
    a damaged one fails the audit; one the store does not hold, or a store that does not answer, is noted."""
    sha256 = record.manifest.get("model_sha256")
    if not sha256:
        return []
    with tempfile.TemporaryDirectory(prefix="harness-audit-") as work:
        try:
            ModelStore.for_competition(competition).restore(sha256, Path(work) / "model")
        except ModelStoreError as exc:
            return [Difference("model", "the archived model", sha256, str(exc), fatal=isinstance(exc, ModelDamaged))]
    return []


def recorded_competition(
    competition: Competition, record: EvaluationRecord, overrides: list[str] | tuple[str, ...]
) -> tuple[Competition, list[Difference]]:
    """The competition as the record ran it (its configuration, with the auditor's overrides) and
    what the overrides changed."""
    recorded = record.manifest.get("config")
    if not recorded:
        return competition, [
            Difference("config", "config", "the resolved configuration", "not in the record (made before records kept it)")
        ]
    try:
        cfg = OmegaConf.merge(OmegaConf.create(recorded), OmegaConf.from_dotlist(list(overrides)))
        settings = settings_from_config(cfg)  # type: ignore[arg-type]
    except (ConfigError, ValueError, OmegaConfBaseException) as exc:
        raise HarnessError(f"the configuration of {record.evaluation_id} with the overrides cannot be used: {exc}") from None
    before, after = flat_params(redact_config(recorded)), flat_params(redact_config(settings.as_dict()))
    differences = [
        Difference("config", key, before.get(key), after.get(key), fatal=not key.startswith(RUN_PLACE_KEYS))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    return Competition(settings, competition.paths, competition.home), differences


def compare(record: EvaluationRecord, rerun: EvaluationRecord, label: str, *, with_host: bool) -> list[Difference]:
    """What a rerun changed: verdict, hashes, scores and config hash (fatal); harness and host (noted)."""
    differences = []
    if rerun.verdict != record.verdict:
        differences.append(Difference("verdict", f"{label}: verdict", record.verdict, rerun.verdict))
    for key in ("model_sha256", "predictions_sha256"):
        if rerun.manifest.get(key) != record.manifest.get(key):
            differences.append(Difference("hashes", f"{label}: {key}", record.manifest.get(key), rerun.manifest.get(key)))
    if rerun.manifest["config_sha256"] != record.manifest["config_sha256"]:
        differences.append(
            Difference("config", f"{label}: config_sha256", record.manifest["config_sha256"], rerun.manifest["config_sha256"])
        )
    before, after = flat_params(record.scores), flat_params(rerun.scores)
    differences += [
        Difference("scores", f"{label}: {k}", before.get(k), after.get(k))
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    ]
    if rerun.manifest["harness_version"] != record.manifest["harness_version"]:
        differences.append(
            Difference("harness", "harness_version", record.manifest["harness_version"], rerun.manifest["harness_version"], fatal=False)
        )
    differences += environment_differences(record.manifest.get("environment"), rerun.manifest.get("environment"))
    if with_host:
        before, after = record.manifest.get("host") or {}, rerun.manifest.get("host") or {}
        differences += [
            Difference("host", k, before.get(k), after.get(k), fatal=False)
            for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)
        ]
    return differences


def environment_differences(recorded: dict[str, Any] | None, observed: dict[str, Any] | None) -> list[Difference]:
    """The auditing harness's Python environment against the one that made the record (noted, never
    fatal): each package added, removed or of another version, or that the record has no fingerprint."""
    if not observed or (recorded or {}).get("sha256") == observed.get("sha256"):
        return []
    if not recorded:
        return [Difference("harness", "environment", None, observed["sha256"], fatal=False)]
    return [
        Difference("harness", f"environment: {change}", recorded["sha256"], observed["sha256"], fatal=False)
        for change in environment_changes(recorded, observed)
    ] or [Difference("harness", "environment", recorded["sha256"], observed["sha256"], fatal=False)]


def score_spread(records: list[EvaluationRecord]) -> dict[str, dict[str, float]]:
    values: dict[str, list[float]] = {}
    for record in records:
        for key, value in flat_params(record.scores).items():
            values.setdefault(key, []).append(value)
    return {key: spread_figures(v) for key, v in sorted(values.items())}


def spread_figures(values: list[float]) -> dict[str, float]:
    """min, max, mean, (population) stdev and n of some runs' scores."""
    return {"min": min(values), "max": max(values), "mean": statistics.fmean(values), "stdev": statistics.pstdev(values), "n": len(values)}


def _finish(report: AuditReport, competition: Competition, sinks: RecordSinks, record: EvaluationRecord | None) -> AuditReport:
    fatal = [d for d in report.differences if d.fatal]
    if fatal and not report.runs:
        report.status = REFUSED
        report.reason = "cannot re-run from the record: " + _summary(fatal)
    elif fatal or report.deterministic is False:
        report.status = FAIL
        report.reason = ("not deterministic: the repeats' predictions differ; " if report.deterministic is False else "") + _summary(fatal)
    directory = audit_dir(competition, report.audit_id)
    data = report.to_dict()
    write_json_atomic(directory / "report.json", data)
    (directory / "report.txt").write_text(render_text(data), encoding="utf-8")
    (directory / "report.html").write_text(render_html(data), encoding="utf-8")
    if record is not None:  # the report is on disk whatever a sink does
        sinks.audited(record, report.audit_id, report.status, sorted(directory.glob("report.*")))
    return report


def _summary(differences: list[Difference]) -> str:
    kinds: dict[str, list[str]] = {}
    for d in differences:
        kinds.setdefault(d.kind, []).append(d.what)
    parts = [
        f"different {kind} ({', '.join(whats[:3])}{f' and {len(whats) - 3} more' if len(whats) > 3 else ''})"
        for kind, whats in kinds.items()
    ]
    return "; ".join(parts)


def audit_dir(competition: Competition, audit_id: str) -> Path:
    return competition.paths.root / "audits" / audit_id
