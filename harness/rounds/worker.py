"""The evaluation worker: a process that drives rounds while there is something to evaluate.

``python -m harness.rounds.worker COMPETITION [KEY=VALUE...]`` is the child that ``harness serve``
supervises (``harness.service.evaluator.Evaluator``: started with the service, started again when
it exits, stopped with SIGTERM); it runs here, beside the rounds, not inside the API's package. It
leads a session of its own, which holds the Ray processes it starts (raylet, GCS, workers, Ray's
agents, which outlive a raylet killed with them): should the service die without stopping it
(SIGKILL), the worker sees it (its parent changes) and SIGKILLs its session at once, so the round it
ran is a dead driver's, resumed by the next start. It keeps Ray up between rounds, so a
submission's verdict is not delayed by Ray's start-up, and looks at the ledger every ``poll_s``:
with evaluation not paused and a submission pending, it drives a round (``drive_round``: the driver
lock, so a ``harness round`` run by hand never overlaps it; a lock held elsewhere means wait and
look again), then frees what the retention policy does not keep (``harness gc --apply``, unless
``competition.retention.between_rounds`` is false). SIGTERM stops a round the way Ctrl-C stops
``harness round``: what did not finish is pending again. It exits by itself after
``service.recycle_after`` evaluated submissions (Ray and MLflow grow a process over weeks).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PARENT_CHECK_S = 0.2  # how often the worker looks whether the service still lives
SERVICE_PID = "HARNESS_SERVICE_PID"  # the service's pid, for a worker started after the service already died


def main(argv: list[str]) -> int:
    """Rounds while there is something to evaluate, until SIGTERM, its parent's end, or ``recycle_after``."""
    from harness.competition.config import load_settings
    from harness.competition.core import Competition
    from harness.competition.paths import ServicePaths
    from harness.rounds.driver import drive_round, driver_backend
    from harness.rounds.reclaim import after_round
    from harness.runner.ray_pool import connect_ray
    from harness.submissions.ledger import Ledger
    from harness.util.errors import HarnessError

    parent = int(os.environ.get(SERVICE_PID) or os.getppid())
    threading.Thread(target=_end_with, args=(parent,), name="harness-parent-watch", daemon=True).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    name, overrides = argv[0], argv[1:]
    competition = Competition.load(load_settings(name, overrides))
    competition.ensure_data()
    service, ledger, backend = competition.settings.service, Ledger.of(competition), driver_backend(competition)
    paths = ServicePaths.of(name, competition.home)
    if not paths.paused_flag("evaluation").exists():
        connect_ray(competition.settings.runner.address)  # now, not at the first submission (drive_round keeps it)
    evaluated, said = 0, ""
    while not stop.is_set() and evaluated < service.recycle_after:
        if paths.paused_flag("evaluation").exists() or not ledger.pending():
            stop.wait(service.poll_s)
            continue
        try:
            summary = drive_round(competition, backend)
        except HarnessError as exc:  # the driver lock held by `harness round`, a damaged journal: say it once, look again
            if str(exc) != said:
                print(f"harness serve: no round now: {exc}", file=sys.stderr, flush=True)
                said = str(exc)
            stop.wait(max(1.0, service.poll_s))
            continue
        said = ""
        if summary is not None:
            evaluated += len(summary.evaluated)
            if summary.cancelled:
                break
            after_round(competition, backend, sys.stderr)  # retention: free what no kept submission needs
    import ray

    ray.shutdown()
    return 0


def _end_with(parent: int) -> None:
    """The service died without stopping this child (SIGKILL; the child is reparented): end the
    child's session, Ray and its containers' watchers with it, as a crash of the machine would.
    SIGKILL, not a round's cancel: that would hold the driver lock while the restarted service waits."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
