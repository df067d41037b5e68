"""An engine that goes away mid-phase and comes back (a daemon restart, as the harness sees it):
the phase is an INFRA_ERROR, retried after the backoff, and the submission ends scored once.

The harness talks to the real engine through a Unix-socket proxy that the test takes down and
brings back, so the engine the other tests use is never restarted. (A real restart also kills the
containers; here the first attempt's container lives on, and the round must remove it.)
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_resume import journals, records
from test_round import harness, submit

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENGINE_SOCKET = "/var/run/docker.sock"


class EngineProxy:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(self.path))
        self._listener.listen(64)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a dying daemon does."""
        assert self._listener is not None
        self._listener.close()
        for sock in self._open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(ENGINE_SOCKET)
            self._open += [client, engine]
            for source, target in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def round_with_the_engine_cut(home, docker_client, tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    """``harness round digits`` whose engine (reached through an ``EngineProxy``) goes away for 1.5 s
    while a phase's container runs, then comes back for the round's clean-up; returns the finished driver."""
    proxy = EngineProxy(tmp_path / "engine.sock")
    proxy.start()
    result: dict = {}
    env = {"DOCKER_HOST": f"unix://{proxy.path}"}
    driver = threading.Thread(target=lambda: result.update(done=harness(home, "round", "digits", *overrides, env=env)))
    driver.start()
    deadline = time.monotonic() + 240
    while not journals(home) or not docker_client.containers.list(
        filters={"label": f"harness.round={journals(home)[0]['round_id']}", "status": "running"}
    ):
        assert time.monotonic() < deadline and driver.is_alive(), "the round never got going"
        time.sleep(0.1)
    proxy.stop()  # the engine is gone mid-phase
    time.sleep(1.5)
    proxy.start()  # and back, for the round's clean-up
    driver.join(timeout=300)
    return result["done"]


def test_engine_restart_mid_phase_is_retried_and_scored_once(home, behave_image, docker_client, tmp_path):
    submission = submit(home, "alpha", behave_image("nap2"))
    # the full phases only: tests/test_smoke.py cuts the engine in the smoke stage
    done = round_with_the_engine_cut(home, docker_client, tmp_path, "runner.retry_backoff_s=1", "competition.smoke.enabled=false")
    assert done.returncode == 0, done.stderr
    assert "the container engine failed" in done.stderr and "attempt 2 of 3" in done.stderr
    (record,) = records(home)
    assert record["submission"]["id"] == submission and record["verdict"] == "SCORED" and record["attempt"] >= 2
    round_id = journals(home)[0]["round_id"]
    assert not docker_client.containers.list(all=True, filters={"label": f"harness.round={round_id}"})
    assert json.loads((home / "competitions/digits/rounds" / f"{round_id}.json").read_text())["state"] == "finished"
