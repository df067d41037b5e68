"""The evaluation loop, kept out of the API process (Ray and MLflow grow a process over weeks).

``Evaluator`` (in the service) keeps one child, ``python -m harness.service.evaluator COMPETITION
[KEY=VALUE...]``, alive: started with the service, started again when it exits (after
``recycle_after`` evaluated submissions, on purpose, or when it died), and stopped with SIGTERM
when the service stops. The child leads a session of its own, which holds the Ray processes it
starts (raylet, GCS, workers, Ray's agents, which outlive a raylet killed with them): should the
service die without stopping it (SIGKILL), the child sees it (its parent changes) and SIGKILLs its
session at once, so the round it ran is a dead driver's, resumed by the next start.
``evaluator.pid`` names the child, so a start after a crash that left one running ends it and its
session first. The child keeps Ray up between
rounds, so a submission's verdict is not delayed by Ray's start-up, and looks at the ledger every
``poll_s``: with evaluation not paused and a submission pending, it drives a round
(``drive_round``: the driver lock, so a ``harness round`` run by hand never overlaps it; a lock
held elsewhere means wait and look again), then frees what the retention policy does not keep
(``harness gc --apply``, unless ``competition.retention.between_rounds`` is false). SIGTERM stops a round the way Ctrl-C stops ``harness
round``: what did not finish is pending again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.util.children import PidFile

STOP_WAIT_S = 60.0  # how long a stopping child may take to cancel its round before it is killed
RESTART_BACKOFF_S = (1.0, 30.0)  # a child that dies at once is restarted after 1 s, doubling up to 30 s
HEALTHY_S = 60.0  # a child that lived this long restarts at once
PARENT_CHECK_S = 0.2  # how often the child looks whether the service still lives
SERVICE_PID = "HARNESS_SERVICE_PID"  # the service's pid, for a child started after the service already died


class Evaluator:
    """Supervises the evaluation child from the service (a thread; no Ray in this process)."""

    def __init__(self, competition: str, overrides: list[str], pidfile: Path) -> None:
        self.command = [sys.executable, "-m", "harness.service.evaluator", competition, *overrides]
        self.pidfile = PidFile(pidfile, "the evaluator")
        self._stopping = threading.Event()
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._watch, name="harness-evaluator", daemon=True)

    def end_stale(self) -> None:
        """End the child a crashed service left running (its round is resumed by the next one)."""
        self.pidfile.end_stale(self.command[:4], session=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        backoff = RESTART_BACKOFF_S[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            env = {**os.environ, SERVICE_PID: str(os.getpid())}
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            self.pidfile.write(self._process.pid)
            code = self._process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_S or code == 0:
                backoff = RESTART_BACKOFF_S[0]
                continue
            print(f"harness serve: the evaluator exited ({code}); starting it again in {backoff:g} s", file=sys.stderr, flush=True)
            self._stopping.wait(backoff)
            backoff = min(RESTART_BACKOFF_S[1], backoff * 2)

    def stop(self) -> None:
        """SIGTERM the child (again each second: a round that was starting takes the next one) until it exits."""
        if self._stopping.is_set() and self._process is None:
            return
        self._stopping.set()
        process, deadline = self._process, time.monotonic() + STOP_WAIT_S
        while process is not None and process.poll() is None and time.monotonic() < deadline:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._process = None
        self.pidfile.clear()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def main(argv: list[str]) -> int:
    """The child: rounds while there is something to evaluate, until SIGTERM, its parent's end, or ``recycle_after``."""
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
        connect_ray(competition.settings.runner.get("address"))  # now, not at the first submission (drive_round keeps it)
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
