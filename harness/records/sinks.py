"""Where a record goes once it is written: the record files first, then every sink in turn.

The record file is the evaluation's truth: it is written before any sink is told, and a failure
to write it is the caller's error. A sink that fails (a tracking server down) only warns: the
record is on disk, and ``harness sync`` delivers it to MLflow later. MLflow is the one sink today;
the service and webhooks are the next. A new sink is a class with the three methods of
``RecordSink``, added to the list ``RecordSinks.for_competition`` builds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.competition.core import Competition
from harness.competition.schema import WebhookConfig
from harness.limits import Verdict
from harness.records.outbox import Outbox, notification, webhooks
from harness.records.publish import publish
from harness.records.record import EvaluationRecord, save_record
from harness.records.tracking import Tracker
from harness.util.errors import HarnessError
from harness.util.redact import redact_text


class SinkError(Exception):
    """A sink could not take a record now; the message says why."""


class RecordSink(Protocol):
    name: str

    def evaluated(self, record: EvaluationRecord, directory: Path) -> None:
        """A new record, saved in ``directory`` (the sink may add to it, e.g. its run id, and save it again)."""
        ...

    def rescored(self, record: EvaluationRecord, path: Path) -> None:
        """A record whose verdict and scores were replaced (the old ones are in its history)."""
        ...

    def audited(self, record: EvaluationRecord, audit_id: str, status: str, reports: list[Path]) -> None:
        """An audit of ``record`` ended with ``status``; ``reports`` are its report files."""
        ...


class MlflowSink:
    """One MLflow run per evaluation (``harness.records.tracking``)."""

    name = "MLflow"

    def __init__(self, tracker: Tracker, competition: Competition) -> None:
        self.tracker = tracker
        self.competition = competition

    def evaluated(self, record: EvaluationRecord, directory: Path) -> None:
        problem = publish(self.tracker, self.competition, record, directory)
        if problem:
            raise SinkError(
                f"MLflow tracking failed for {record.evaluation_id} ({problem}); the record is kept on disk, "
                f"`harness sync {record.competition}` uploads it later"
            )

    def rescored(self, record: EvaluationRecord, path: Path) -> None:
        if record.mlflow_run_id:  # not uploaded yet: `harness sync` uploads the rescored record
            try:
                self.tracker.log_rescore(record.mlflow_run_id, record, path)
            except Exception as exc:  # noqa: BLE001 - any tracking failure
                raise SinkError(
                    f"MLflow run {record.mlflow_run_id} keeps the old scores of {record.evaluation_id}: {redact_text(str(exc))}"
                ) from exc

    def audited(self, record: EvaluationRecord, audit_id: str, status: str, reports: list[Path]) -> None:
        if record.mlflow_run_id:
            try:
                self.tracker.log_audit(record.mlflow_run_id, audit_id, status, reports)
            except Exception as exc:  # noqa: BLE001 - any tracking failure
                raise SinkError(
                    f"the audit report could not be attached to MLflow run {record.mlflow_run_id}: {redact_text(str(exc))}"
                ) from exc


class OutboxSink:
    """Queues a record's notifications for the competition's webhooks: one cheap transaction, never
    the network (the service's delivery worker sends them). INFRA_ERROR is not a verdict (the
    submission is evaluated again); records a round did not make (audits, re-inferences) are not news."""

    name = "webhooks"

    def __init__(self, competition: Competition, hooks: list[WebhookConfig]) -> None:
        self.outbox, self.hooks = Outbox.of(competition), hooks

    def evaluated(self, record: EvaluationRecord, directory: Path) -> None:
        if record.origin is None and record.verdict != Verdict.INFRA_ERROR.value:
            self._queue(record, "verdict")

    def rescored(self, record: EvaluationRecord, path: Path) -> None:
        if record.origin is None:
            self._queue(record, "rescore")

    def audited(self, record: EvaluationRecord, audit_id: str, status: str, reports: list[Path]) -> None:
        pass  # the organizer's proof, not a team's news

    def _queue(self, record: EvaluationRecord, event: str) -> None:
        try:
            self.outbox.add(event, notification(record, event), self.hooks)
        except HarnessError as exc:
            raise SinkError(f"the webhooks are not told of {record.evaluation_id}: {exc}") from None


@dataclass
class RecordSinks:
    """The record files, then ``sinks`` in order. ``RecordSinks()`` writes the files only (``harness check``)."""

    sinks: list[RecordSink] = field(default_factory=list)

    @classmethod
    def for_competition(cls, competition: Competition, tracker: Tracker | None = None) -> RecordSinks:
        """The competition's sinks as configured: MLflow (``tracking.uri``; it connects on first use),
        then the webhooks' outbox (``competition.webhooks``), last, so that a notification follows
        the record's upload."""
        sinks: list[RecordSink] = [MlflowSink(tracker or Tracker.for_competition(competition), competition)]
        hooks = webhooks(competition)
        if hooks:
            sinks.append(OutboxSink(competition, hooks))
        return cls(sinks)

    def evaluated(self, record: EvaluationRecord, directory: Path) -> Path:
        path = save_record(record, directory)  # on disk before anything else can fail
        self._tell(lambda sink: sink.evaluated(record, directory))
        return path

    def rescored(self, record: EvaluationRecord, directory: Path) -> Path:
        path = save_record(record, directory)
        self._tell(lambda sink: sink.rescored(record, path))
        return path

    def audited(self, record: EvaluationRecord, audit_id: str, status: str, reports: list[Path]) -> None:
        self._tell(lambda sink: sink.audited(record, audit_id, status, reports))

    def _tell(self, deliver: Callable[[RecordSink], None]) -> None:
        for sink in self.sinks:
            try:
                deliver(sink)
            except SinkError as exc:
                print(f"warning: {exc}", file=sys.stderr)
