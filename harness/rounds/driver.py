"""``harness round`` from start to end: take the competition's driver lock, put right what a dead
driver left (its records, its containers, its MLflow uploads), connect to Ray, run the round."""

from __future__ import annotations

import sys
import time
from contextlib import suppress
from typing import TextIO

from harness.competition.core import Competition
from harness.proofs.sync import sync
from harness.records.record import SCHEMA_ID
from harness.records.sinks import RecordSinks
from harness.records.tracking import Tracker
from harness.rounds.journal import CANCELLED, FINISHED, RoundJournal
from harness.rounds.plan import plan_round
from harness.rounds.recovery import recover
from harness.rounds.round import Round, RoundSummary
from harness.runner.backend import Backend, EngineUnavailable, check_backend, create_backend
from harness.runner.cleanup import sweep
from harness.runner.ray_pool import RayPhasePool, connect_ray, harness_versions
from harness.submissions.ledger import Ledger
from harness.util.errors import ConfigError, HarnessError


def release_versions() -> dict[str, str]:
    """What every node must share with the driver: the harness release and the record schema it writes.
    Run on each node (it reads that node's install), compared with the driver's answer."""
    return {**harness_versions(), "record schema": SCHEMA_ID}


def drive_round(competition: Competition, backend: Backend | None = None, out: TextIO | None = None) -> RoundSummary | None:
    """Run (or resume) a round; None when there was nothing to do. The driver's own engine work
    (sweeping orphans, the engine's version) goes through ``backend``, by default the competition's
    ``runner.backend`` on this machine; the phases run on each node's own backend of that name. Progress
    goes to ``out``, by default this process's standard error at the time of the call."""
    out = out or sys.stderr
    settings, runner = competition.settings, competition.settings.runner
    try:
        backend_name = check_backend(runner.backend)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    ledger = Ledger.of(competition)
    with RoundJournal.begin(competition.paths.root / "rounds", settings.config_sha256) as journal:
        if journal.dead:
            kept = recover(ledger, competition.paths.records, journal.dead)
            resuming = f"; resuming {journal.round_id}" if journal.resumed else ""
            print(f"the driver of {', '.join(journal.dead)} died; {len(kept)} evaluation(s) it finished are kept{resuming}", file=out)
        if not journal.dead and not ledger.pending():
            return None
        started = time.monotonic()
        backend = backend or driver_backend(competition)
        connect_ray(runner.address)
        plan = plan_round(competition)  # the smoke stage, staging and credentials: worked out once, handed down
        pool = RayPhasePool(
            max_parallel=runner.max_parallel,
            staging=plan.staging,
            backend=backend_name,
            smoke_slots=plan.smoke_slots,
            versions=release_versions,
        )
        pool.warm_up()  # refuses a cluster with a node of another release, before the round starts
        ray_s = time.monotonic() - started
        journal.start()
        tracker = Tracker.for_competition(competition)
        with suppress(Exception):  # a tracking server that is down now: records wait for `harness sync`
            tracker.experiment_id  # noqa: B018 - connect (and create the experiment) before the first record
        print(f"start-up: Ray {ray_s:.1f} s, MLflow {time.monotonic() - started - ray_s:.1f} s", file=out, flush=True)
        for dead in journal.dead:
            print(f"{dead}: removed {sweep(backend, {'harness.round': dead})} orphan container(s)", file=out)
        if journal.dead:
            print(f"uploaded {len(sync(competition, tracker).uploaded)} record(s) MLflow had not received", file=out)
        summary = Round(
            competition,
            ledger,
            RecordSinks.for_competition(competition, tracker),
            pool,
            backend,
            plan=plan,
            round_id=journal.round_id,
            out=out,
            infra_retries=runner.infra_retries,
            retry_backoff_s=runner.retry_backoff_s,
        ).run()
        journal.finish(CANCELLED if summary.cancelled else FINISHED)
        return summary


def driver_backend(competition: Competition) -> Backend:
    """The competition's ``runner.backend`` on the driver's machine (``HarnessError`` saying how to
    start an engine when none answers)."""
    try:
        return create_backend(check_backend(competition.settings.runner.backend))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None
