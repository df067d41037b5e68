"""The service's supervision of the evaluation worker, which it keeps out of the API process.

``Evaluator`` keeps one child, the worker (``python -m harness.rounds.worker COMPETITION
[KEY=VALUE...]``, which lives with the rounds), alive: started with the service, started again
when it exits (after ``recycle_after`` evaluated submissions, on purpose, or when it died), and
stopped with SIGTERM when the service stops. ``evaluator.pid`` names the child, so a start after
a crash that left one running ends it and its session first (the worker's own session holds its
Ray processes; see ``harness.rounds.worker``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.rounds.worker import SERVICE_PID
from harness.util.children import PidFile

STOP_WAIT_S = 60.0  # how long a stopping child may take to cancel its round before it is killed
RESTART_BACKOFF_S = (1.0, 30.0)  # a child that dies at once is restarted after 1 s, doubling up to 30 s
HEALTHY_S = 60.0  # a child that lived this long restarts at once


class Evaluator:
    """Supervises the evaluation child from the service (a thread; no Ray in this process)."""

    def __init__(self, competition: str, overrides: list[str], pidfile: Path) -> None:
        self.command = [sys.executable, "-m", "harness.rounds.worker", competition, *overrides]
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
