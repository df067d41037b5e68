"""A round: every pending submission of a competition, evaluated as Ray tasks, recorded one by one."""

from __future__ import annotations

import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO

import docker

from harness.competition import Competition
from harness.evaluation import Evaluation
from harness.ledger import EVALUATED, PENDING, RUNNING, Ledger, Submission
from harness.record import EvaluationRecord
from harness.recording import record_evaluation
from harness.tracking import Tracker
from runner.cleanup import remove_containers
from runner.phase import PhaseResult
from runner.ray_pool import RayPhasePool


@dataclass
class RoundSummary:
    round_id: str
    records: list[EvaluationRecord] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def counts(self) -> Counter:
        return Counter(r.verdict for r in self.records)


class Round:
    def __init__(self, competition: Competition, ledger: Ledger, tracker: Tracker | None, pool: RayPhasePool,
                 client: docker.DockerClient, *, infra_retries: int = 2, out: TextIO = sys.stderr) -> None:
        self.competition = competition
        self.ledger = ledger
        self.tracker = tracker
        self.pool = pool
        self.client = client
        self.infra_retries = infra_retries
        self.out = out
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        self.summary = RoundSummary(f"round-{stamp}-{secrets.token_hex(3)}")
        self.docker_version = client.version().get("Version", "")
        self._submissions: dict[str, Submission] = {}
        self._total = 0

    def run(self) -> RoundSummary:
        started = time.monotonic()
        pending = self.ledger.pending()
        self._total = len(pending)
        self._say(f"{self.summary.round_id}: {len(pending)} pending submission(s) in {self.competition.name}")
        for submission in pending:
            submission.state = RUNNING
            self.ledger.save(submission)
            self._submissions[submission.id] = submission
            self._start(submission, attempt=1)
        try:
            while self.pool.busy:
                for evaluation, result in self.pool.wait(timeout=1.0):
                    self._advance(evaluation, result)
        except KeyboardInterrupt:
            self._cancel()
        self.summary.wall_s = time.monotonic() - started
        return self.summary

    def _start(self, submission: Submission, attempt: int) -> None:
        evaluation = Evaluation(self.competition, submission.summary(), round_id=self.summary.round_id, attempt=attempt)
        self.pool.submit(evaluation, evaluation.next_phase())

    def _advance(self, evaluation: Evaluation, result: PhaseResult) -> None:
        evaluation.accept(result)
        submission = self._submissions[evaluation.submission["id"]]
        self._say(f"{submission.team} {submission.id} {result.phase}: {result.verdict.value} ({result.wall_s:.1f} s)")
        spec = evaluation.next_phase()
        if spec is not None:
            self.pool.submit(evaluation, spec)
            return
        if evaluation.infra_failed and evaluation.attempt <= self.infra_retries:
            self._say(f"{submission.id}: infrastructure failure, retrying (attempt {evaluation.attempt + 1})")
            self._start(submission, evaluation.attempt + 1)
            return
        record = record_evaluation(evaluation, self.competition.paths.records, self.tracker, self.docker_version)
        self.summary.records.append(record)
        submission.evaluations.append(record.evaluation_id)
        if evaluation.infra_failed:
            submission.infra_failures += 1
            submission.state = PENDING  # the organizer's failure: not charged, evaluated again next round
        else:
            submission.state = EVALUATED
        self.ledger.save(submission)
        score = record.scores.get("public", {}).get(self.competition.settings.competition.primary_metric)
        detail = f" public {self.competition.settings.competition.primary_metric}={score:.4f}" if score is not None else ""
        self._say(f"{submission.team} {submission.id}: {record.verdict}{detail} [{len(self.summary.records)}/{self._total} done]")

    def _cancel(self) -> None:
        self._say("interrupted: stopping the round")
        keys = self.pool.cancel()
        removed = remove_containers(self.client, {"harness.round": self.summary.round_id})
        for evaluation in keys:
            submission = self._submissions[evaluation.submission["id"]]
            submission.state = PENDING
            self.ledger.save(submission)
            self.summary.cancelled.append(submission.id)
        self._say(f"cancelled {len(self.summary.cancelled)} evaluation(s), removed {removed} container(s); they are pending again")

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)
