"""A round: every pending submission of a competition, evaluated as Ray tasks, recorded one by one.

Infrastructure failures (a lost worker or node, an engine that went away, a full disk) are retried
with backoff, up to ``infra_retries`` times, after the failed attempt's containers are removed;
only the last attempt is recorded. SIGINT or SIGTERM stops the round cleanly: the running
containers are killed and removed, and whatever did not finish is pending again.
"""

from __future__ import annotations

import heapq
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

from harness.competition.core import Competition
from harness.evaluation.evaluation import PHASE_ORDER, Evaluation
from harness.evaluation.recording import record_evaluation
from harness.limits import PhaseVerdict
from harness.records.record import EvaluationRecord
from harness.records.sinks import RecordSinks
from harness.rounds.moderation import note_records
from harness.rounds.plan import RoundPlan
from harness.rounds.progress import Progress, summary_table
from harness.rounds.start_refusals import StartRefusals
from harness.runner.backend import Backend
from harness.runner.cleanup import sweep
from harness.runner.phase import PhaseResult
from harness.runner.ray_pool import RayPhasePool
from harness.submissions.ledger import MODERATED, Ledger, Submission
from harness.util.errors import HarnessError

POLL_S = 0.5  # the longest the loop waits before looking at a stop request or a due retry
MAX_BACKOFF_S = 60.0


@dataclass
class RoundSummary:
    round_id: str
    verdicts: Counter[str] = field(default_factory=Counter)
    evaluated: dict[str, str] = field(default_factory=dict)  # submission id -> evaluation id
    retried: int = 0
    cancelled: list[str] = field(default_factory=list)
    left_pending: list[str] = field(default_factory=list)  # infrastructure failures after the last retry
    wall_s: float = 0.0


class _StopRequest:
    """SIGINT and SIGTERM ask the round to stop cleanly; a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Round:
    def __init__(
        self,
        competition: Competition,
        ledger: Ledger,
        sinks: RecordSinks,
        pool: RayPhasePool,
        backend: Backend,
        *,
        plan: RoundPlan,
        round_id: str,
        infra_retries: int,
        retry_backoff_s: float,
        out: TextIO | None = None,
    ) -> None:
        self.competition = competition
        self.ledger = ledger
        self.sinks = sinks
        self.pool = pool
        self.backend = backend  # the driver's engine: its version, and sweeping the round's containers
        self.plan = plan  # the smoke stage every evaluation runs, worked out once
        self.infra_retries = infra_retries
        self.retry_backoff_s = retry_backoff_s
        self.out = out or sys.stderr
        self.summary = RoundSummary(round_id)
        self.docker_version = backend.engine_version()
        self.progress = Progress(0, self.out)
        self._submissions: dict[str, Submission] = {}  # started, not yet recorded
        # ``quota.concurrent_per_team``: a team's submissions past it wait here (pending in the ledger,
        # so still cancellable) until one of its evaluations is over; other teams' go first meanwhile.
        self._cap = competition.settings.competition.rules.concurrent_per_team
        self._held: dict[str, deque[Submission]] = {}
        self._active: Counter[str] = Counter()  # per team: started evaluations not yet over
        self._retries: list[tuple[float, int, str, int]] = []  # (due, order, submission id, attempt)
        self._over: list[Evaluation] = []  # concluded, to record
        # Scoring and recording (MLflow) take a while: one thread does it while the loop keeps the cluster busy.
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness-recorder")
        self._recording: dict[Future[EvaluationRecord], Evaluation] = {}
        self._refusals = StartRefusals()

    def run(self) -> RoundSummary:
        started = time.monotonic()
        pending = self.ledger.pending()
        self.progress = Progress(len(pending), self.out)
        self._say(f"{self.summary.round_id}: {len(pending)} pending submission(s) in {self.competition.name}")
        with _StopRequest() as stop:
            try:
                for submission in pending:
                    self._admit(submission)
                while self._over or self._retries or self._recording or self.pool.busy:
                    if stop.requested:
                        self._cancel()
                        break
                    self._step()
                self._take_records(wait=True)
            except Exception as exc:
                self._abort(exc)
                raise
        self._recorder.shutdown()
        sweep(self.backend, {"harness.round": self.summary.round_id})  # a lost worker's container is an orphan now
        self.summary.wall_s = time.monotonic() - started
        summary = self.summary
        self._say(
            summary_table(
                summary.round_id,
                summary.wall_s,
                summary.verdicts,
                retried=summary.retried,
                cancelled=len(summary.cancelled),
                left_pending=len(summary.left_pending),
            )
        )
        return summary

    def _step(self) -> None:
        """Start the retries that are due, take the finished phases and queue what follows them,
        hand the finished evaluations to the recorder, take the records it wrote."""
        self._start_due_retries()
        if self.pool.busy:
            for evaluation, result in self.pool.wait(timeout=self._wait_s()):
                self._refusals.saw(result)
                evaluation.accept(result)
                self._continue(evaluation)
            self.pool.dispatch()
        elif self._recording:
            wait_futures(self._recording, timeout=self._wait_s(), return_when=FIRST_COMPLETED)
        else:
            time.sleep(self._wait_s())
        for evaluation in self._over:
            self._recording[self._recorder.submit(self._conclude, evaluation)] = evaluation
        self._over.clear()
        self._take_records(wait=False)
        self.progress.maybe_report(len({e.submission.id for e in self.pool.running_keys()}))

    def _admit(self, submission: Submission) -> None:
        """Start ``submission`` when its team has a free slot under the cap, else hold it back; one
        its team cancelled meanwhile (or the organizer ended) is skipped, never run."""
        team = submission.team
        if self._cap is not None and self._active[team] >= self._cap:
            self._held.setdefault(team, deque()).append(submission)
            return
        if not self.ledger.start(submission):
            self.progress.total -= 1
            self._say(f"{team} {submission.id}: {submission.state} before it started; not evaluated")
            return
        self._active[team] += 1
        self._submissions[submission.id] = submission
        self._start(submission, attempt=1)

    def _release(self, team: str) -> None:
        """One of ``team``'s evaluations is over: its next held submission (if any) takes the slot."""
        self._active[team] -= 1
        held = self._held.get(team)
        while held and self._active[team] < (self._cap or 1):
            self._admit(held.popleft())
        if not held:
            self._held.pop(team, None)

    def _start(self, submission: Submission, attempt: int) -> None:
        competition = self.competition.for_phase(submission.competition_phase)  # its phase's test set and labels
        self._continue(Evaluation(competition, submission, round_id=self.summary.round_id, attempt=attempt, smoke=self.plan.smoke))

    def _continue(self, evaluation: Evaluation) -> None:
        """Queue what comes next for an evaluation: its next phase, a retry, or its record. The
        ledger notes the phase handed to the pool (what the service shows the team), and none after
        the last. Smoke phases go to the pool's smoke lane."""
        if not evaluation.infra_failed:
            try:
                spec = evaluation.next_phase()
            except OSError as exc:  # its run directory cannot be made: the work directory's disk is full, or gone
                done = evaluation.smoke_results if evaluation.in_smoke else evaluation.results
                phase = next(p for p in PHASE_ORDER if p not in done)
                message = f"{evaluation.phase_name(phase)}: the harness could not prepare its run directory ({exc}); this is not the submission's fault"
                limits = self.competition.settings.limits.phase(phase).to_dict()
                evaluation.accept(PhaseResult(phase, PhaseVerdict.INFRA_ERROR, message, limits=limits))
            else:
                if spec is not None:
                    team, smoke = evaluation.submission.team, evaluation.in_smoke
                    # its follow-ups go first (a full train after its smoke stage queues behind the started ones)
                    started = bool(evaluation.smoke_results if smoke else evaluation.results) or evaluation.attempt > 1
                    self.pool.submit(evaluation, spec, group=team, first=started, smoke=smoke)
                    # "smoke train" in the smoke stage
                    self.ledger.set_phase(evaluation.submission.id, evaluation.phase_name(spec.phase), evaluation.id)
                    return
        self.ledger.set_phase(evaluation.submission.id, None)
        if evaluation.infra_failed and (blame := self._refusals.blame(evaluation.submission.id, evaluation.infra_failure)):
            evaluation.blame_image(blame)
        if evaluation.infra_failed and evaluation.attempt <= self.infra_retries:
            self._retry(evaluation)  # keeps its team's slot
        else:
            self._over.append(evaluation)
            self._release(evaluation.submission.team)

    def _retry(self, evaluation: Evaluation) -> None:
        failure = evaluation.infra_failure
        assert failure is not None
        delay = min(MAX_BACKOFF_S, self.retry_backoff_s * 2 ** (evaluation.attempt - 1))
        removed = sweep(self.backend, {"harness.evaluation": evaluation.id})
        self._say(
            f"{evaluation.submission.team} {evaluation.submission.id}: {failure.message.splitlines()[0]} "
            f"[{removed} container(s) removed; attempt {evaluation.attempt + 1} of {self.infra_retries + 1} in {delay:g} s]"
        )
        heapq.heappush(self._retries, (time.monotonic() + delay, self.summary.retried, evaluation.submission.id, evaluation.attempt + 1))
        self.summary.retried += 1

    def _start_due_retries(self) -> None:
        while self._retries and self._retries[0][0] <= time.monotonic():
            _, _, submission_id, attempt = heapq.heappop(self._retries)
            self._start(self._submissions[submission_id], attempt)

    def _wait_s(self) -> float:
        if not self._retries:
            return POLL_S
        return max(0.0, min(POLL_S, self._retries[0][0] - time.monotonic()))

    def _conclude(self, evaluation: Evaluation) -> EvaluationRecord:
        """In the recorder thread: score, save the record, upload it to MLflow."""
        return record_evaluation(evaluation, self.competition.paths.records, self.sinks, self.docker_version)

    def _take_records(self, *, wait: bool) -> None:
        """Update the ledger and the summary for each record written (all of them, waiting, with ``wait``)."""
        for future in [f for f in self._recording if wait or f.done()]:
            evaluation = self._recording.pop(future)
            submission = self._submissions.pop(evaluation.submission.id)
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - one bad file (labels, a record that fails its schema, a full disk) must not stop the round
                self._leave_pending(submission, f"its record could not be made ({_reason(exc)})")
                continue
            if evaluation.infra_failed:
                self.summary.left_pending.append(submission.id)
                self.ledger.requeue(submission, record.evaluation_id)  # the organizer's failure: not charged, evaluated again next round
            else:
                smoke_exempt = record.failed_stage == "smoke" and not self.competition.settings.competition.rules.charge_smoke_failures
                self.ledger.finish(submission, record.evaluation_id, quota_exempt="smoke" if smoke_exempt else None)
            self._note_if_moderated(submission)
            self.summary.verdicts[record.verdict] += 1
            self.summary.evaluated[submission.id] = record.evaluation_id
            self.progress.finished(record.verdict)
            self._say(f"[{self.progress.done}/{self.progress.total}] {submission.team} {submission.id}: {self._outcome(record)}")

    def _leave_pending(self, submission: Submission, why: str) -> None:
        self.ledger.requeue(submission)
        self.summary.left_pending.append(submission.id)
        self.summary.verdicts[PhaseVerdict.INFRA_ERROR.value] += 1
        self.progress.finished(PhaseVerdict.INFRA_ERROR.value)
        self._say(f"[{self.progress.done}/{self.progress.total}] {submission.team} {submission.id}: {why}; it stays pending, not charged")

    def _note_if_moderated(self, submission: Submission) -> None:
        """A submission withdrawn or disqualified while this round ran it keeps that state (the ledger
        sees to it); the record this round just wrote gets the decision noted, like the earlier ones."""
        stored = self.ledger.get(submission.id)
        if stored.state in MODERATED:
            noted, problems = note_records(self.competition.paths.records, stored, submission.evaluations[-1:])
            for evaluation_id, why in problems.items():
                self._say(f"{submission.id}: {evaluation_id} not noted: {why}")
            self._say(f"{submission.team} {submission.id} was {stored.state} while it ran ({stored.moderation_reason}); its record says so")

    def _abort(self, exc: BaseException) -> None:
        """An error the round cannot go on after (the ledger cannot be written, a bug): stop what runs,
        remove the round's containers, and make every unfinished submission pending again (the
        organizer's failure, not charged), so that none is left running."""
        self._say(f"the round stops: {_reason(exc)}; its unfinished submissions are pending again")
        with suppress(Exception):
            self.pool.cancel()
        with suppress(Exception):
            sweep(self.backend, {"harness.round": self.summary.round_id})
        for submission in list(self._submissions.values()):
            with suppress(Exception):  # the ledger itself may be what failed: the next round treats RUNNING as pending
                self.ledger.requeue(submission)
                self.summary.left_pending.append(submission.id)
        self._submissions.clear()
        self._recorder.shutdown(wait=False, cancel_futures=True)

    def _outcome(self, record: EvaluationRecord) -> str:
        metric = self.competition.settings.competition.primary_metric
        score = record.scores.get("public", {}).get(metric)
        phases = ", ".join(f"{name} {p.wall_s:.1f} s on {p.node or '?'}" for name, p in record.phases.ran().items())
        return record.verdict + (f" public {metric}={score:.4f}" if score is not None else "") + (f" ({phases})" if phases else "")

    def _cancel(self) -> None:
        self._say("interrupted: stopping the round (Ctrl-C again quits at once)")
        self.pool.cancel()
        self._take_records(wait=True)  # what finished is recorded
        self._retries.clear()
        removed = sweep(self.backend, {"harness.round": self.summary.round_id})
        for submission in self._submissions.values():
            self.ledger.requeue(submission)
            self.summary.cancelled.append(submission.id)
        self._submissions.clear()
        self._say(f"cancelled {len(self.summary.cancelled)} evaluation(s), removed {removed} container(s); they are pending again")

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _reason(exc: BaseException) -> str:
    """An exception as one line: its message, or its type when it has none."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, (HarnessError, OSError)) and text else f"{type(exc).__name__}: {text}" if text else type(exc).__name__
