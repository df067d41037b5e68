"""``harness round`` from start to end: take the competition's driver lock, put right what a dead
driver left (its records, its containers, its MLflow uploads), connect to Ray, run the round."""

from __future__ import annotations

import sys
import time
from contextlib import suppress
from typing import TextIO

import docker

from harness.competition.core import Competition
from harness.competition.smoke import smoke_config
from harness.proofs.sync import sync
from harness.records.record import SCHEMA_ID
from harness.records.sinks import RecordSinks
from harness.records.tracking import Tracker
from harness.rounds.distribution import cluster_staging
from harness.rounds.journal import CANCELLED, FINISHED, RoundJournal
from harness.rounds.recovery import recover
from harness.rounds.round import Round, RoundSummary
from harness.runner.backend import check_backend
from harness.runner.cleanup import sweep
from harness.runner.ray_pool import RayPhasePool, connect_ray, harness_versions
from harness.submissions.ledger import Ledger
from harness.util.errors import ConfigError


def release_versions() -> dict[str, str]:
    """What every node must share with the driver: the harness release and the record schema it writes.
    Run on each node (it reads that node's install), compared with the driver's answer."""
    return {**harness_versions(), "record schema": SCHEMA_ID}


def drive_round(competition: Competition, client: docker.DockerClient, out: TextIO = sys.stderr) -> RoundSummary | None:
    """Run (or resume) a round; None when there was nothing to do."""
    settings, runner = competition.settings, competition.settings.runner
    try:
        backend = check_backend(runner.backend)
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
        connect_ray(runner.get("address"))
        pool = RayPhasePool(
            max_parallel=runner.get("max_parallel"),
            staging=cluster_staging(competition, runner.get("node_cache")),
            backend=backend,
            smoke_slots=runner.smoke_slots if smoke_config(competition).enabled else 0,
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
            print(f"{dead}: removed {sweep(client, {'harness.round': dead})} orphan container(s)", file=out)
        if journal.dead:
            print(f"uploaded {len(sync(competition, tracker).uploaded)} record(s) MLflow had not received", file=out)
        summary = Round(
            competition,
            ledger,
            RecordSinks.for_competition(competition, tracker),
            pool,
            client,
            round_id=journal.round_id,
            out=out,
            infra_retries=runner.infra_retries,
            retry_backoff_s=runner.retry_backoff_s,
        ).run()
        journal.finish(CANCELLED if summary.cancelled else FINISHED)
        return summary
