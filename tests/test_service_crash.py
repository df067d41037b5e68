"""The service killed with SIGKILL (the `harness serve` process alone, its children left to the
kernel) during a push, its evaluator idle with its Ray started, and during a round: the real
service, registry, engine and Ray. On restart nothing is lost, nothing is charged twice, no ledger
row points at an image the registry lacks, and nothing the dead service started keeps running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.registry import IssuerKey, RegistryClient, registry_binary
from harness.submissions.ledger import Ledger
from harness.util.children import command_line
from tests.service_helpers import Service, harness, push, running_service, tiny_image

PER_DAY = 3
# Ray's workers notice their raylet's death within a few seconds; one still starting when the GCS went
# retries it for up to gcs_rpc_server_reconnect_timeout_s (60 s by default) before it exits: a loaded
# run once left one such ray::IDLE past 30 s.
DEATH_S = 90.0


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    # no smoke stage: the round cut short is the full phases' (half the containers to run again)
    overrides = (f"competition.quota.per_day={PER_DAY}", "competition.smoke.enabled=false")
    with running_service(tmp_path_factory.mktemp("crash"), *overrides) as running:
        yield running


@pytest.fixture(scope="module")
def root(service) -> Path:
    return service.home / "service" / "digits"


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: {pid: its start time}, so a recycled pid is not taken for it."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = {}, [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        for child in below:
            found[child] = _started(child)
        frontier = below
    return found


def _started(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(processes: dict[int, str]) -> list[str]:
    return [" ".join(command_line(pid) or ["?"]) for pid, started in processes.items() if command_line(pid) and _started(pid) == started]


def crash(service: Service) -> dict[int, str]:
    """SIGKILL `harness serve` alone (not its group); wait until all it started has ended too."""
    below = descendants(service.process.pid)
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait()
    deadline = time.monotonic() + DEATH_S
    while alive(below) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(below), f"left running after the service's SIGKILL: {alive(below)}"
    return below


def wait_until(check, what: str, timeout: float = 120.0, service: Service | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout:g} s" + (f": {service.log.read_text()[-2000:]}" if service else ""))


def test_a_restart_ends_what_an_older_crash_left_running_and_nothing_else(service, root):
    service.stop()
    assert not (root / "registry.pid").exists() and not (root / "evaluator.pid").exists()  # a clean stop leaves no pidfile
    wait_until(lambda: not _listening(service.registry_port), "the stopped registry's port let go")  # the stale one below takes it
    env = {**os.environ, "HARNESS_HOME": str(service.home)}
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    # what a crash with no parent-death signal leaves: a registry with this configuration and an evaluator, owners gone
    registry = subprocess.Popen(
        [registry_binary(), "serve", str(root / "registry.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    (root / "paused-evaluation").touch()  # the stale evaluator then waits without starting Ray
    evaluator = subprocess.Popen([sys.executable, "-m", "harness.rounds.worker", "digits"], env=env, stderr=subprocess.DEVNULL)
    for name, child in (("registry.pid", registry), ("evaluator.pid", evaluator)):
        (root / name).write_text(f"{child.pid} {dead_owner.pid}\n")
    wait_until(lambda: _listening(service.registry_port), "the stale registry")
    assert registry.poll() is None, "the stale registry did not start: its port was taken"  # the premise: it holds the port
    service.start()  # the same ports: the stale registry held the registry's
    assert registry.wait(timeout=5) == -signal.SIGTERM and evaluator.wait(timeout=5) is not None
    # a pidfile that names some other program is left alone, and so is that program
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        service.stop()
        harness(service.home, "service", "resume", "digits")
        (root / "registry.pid").write_text(f"{stranger.pid} {dead_owner.pid}\n")
        service.start()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    # a second `harness serve` on other ports is refused, and the running one keeps its children
    second = Service(service.home)
    done = harness(service.home, "serve", "digits", "--port", str(second.port), "--registry-port", str(second.registry_port), check=False)
    assert done.returncode == 2 and "of another running instance" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert service.call("GET", "/api/v1/health").json()["status"] == "ok"
    assert _listening(service.registry_port)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def big_image(docker_client, tag: str, megabytes: int = 24) -> None:
    """A FROM-scratch image holding random data: its upload takes long enough to be cut."""
    tiny_image(docker_client, tag, note=os.urandom(megabytes * 1024 * 1024))


def test_sigkill_during_a_push_loses_nothing_and_charges_nothing(service, root, docker_client):
    """Also the SIGKILL of the service alone with its evaluator idle (its Ray started, no round): the
    registry, the evaluator and Ray end with it, and it starts again on the same ports."""
    team = service.add_team("Pusher")
    reference = f"{service.registry}/teams/pusher/big:1"
    big_image(docker_client, reference)
    uploads = root / "registry" / "docker" / "registry" / "v2" / "repositories" / "teams" / "pusher" / "big" / "_uploads"
    lines: list[dict] = []
    auth = {"username": team["id"], "password": team["token"]}
    wait_until(lambda: any("raylet" in c for c in alive(descendants(service.process.pid))), "the evaluator's Ray", service=service)
    thread = threading.Thread(
        target=lambda: lines.extend(docker_client.api.push(reference, auth_config=auth, stream=True, decode=True)), daemon=True
    )
    thread.start()
    wait_until(lambda: uploads.is_dir() and any(uploads.iterdir()), "the first blob's upload", service=service)
    below = crash(service)
    assert len(below) >= 3  # the registry, the evaluator, Ray's processes: all gone now (crash asserts it)
    assert Ledger(service.home, "digits").of_team("Pusher") == []
    service.start()  # the same ports
    assert service.call("GET", "/api/v1/health").json()["status"] == "ok"
    assert service.call("GET", "c/quota", team["token"]).json()["used"] == 0
    # the engine retries a cut upload (5 s, then 10 s, ...): it was cut, and it went through once the registry was back
    thread.join(timeout=120)
    assert any(str(line.get("status", "")).startswith("Retrying in") for line in lines), lines
    resumed = next(line["aux"]["Digest"] for line in lines if "Digest" in line.get("aux", {}))
    digest = push(docker_client, reference, team)
    assert digest == resumed
    answer = service.call("POST", "c/submissions", team["token"], json={"image": reference, "digest": digest, "message": "again"})
    assert answer.status_code == 201, answer.text
    assert service.call("GET", "c/quota", team["token"]).json()["used"] == 1
    _every_row_resolves(service)


def _every_row_resolves(service: Service) -> None:
    client = RegistryClient(
        service.registry, IssuerKey.load_or_create(service.home / "service" / "digits" / "registry-auth"), "harness-registry"
    )
    rows = Ledger(service.home, "digits").all()
    assert rows
    for row in rows:
        repository, digest = row.image.removeprefix(f"{service.registry}/").split("@")
        assert client.manifest(repository, digest).digest == digest


@pytest.mark.slow
def test_sigkill_during_a_round_evaluates_once_more_and_charges_once(service, root, docker_client, behave_image):
    """The service SIGKILLed while a round runs on its evaluator's Ray: the registry, the evaluator and
    Ray end with it, the service restarts on the same ports, and the round resumed there evaluates
    the submission once more and charges it once."""
    team = service.add_team("Napper")
    reference = f"{service.registry}/teams/napper/nap:1"
    # 3 s in each phase: the SIGKILL follows the sight of its train container, long before its record could be written
    docker_client.images.get(behave_image("nap3")).tag(reference)
    digest = push(docker_client, reference, team)
    sid = service.call("POST", "c/submissions", team["token"], json={"image": reference, "digest": digest, "message": ""}).json()["id"]
    ledger = Ledger(service.home, "digits")
    wait_until(lambda: ledger.get(sid).state == "running", "the submission running", service=service)
    containers = wait_until(
        lambda: docker_client.containers.list(filters={"label": f"harness.submission={sid}"}), "its container", service=service
    )
    round_id = containers[0].labels["harness.round"]
    # the SIGKILL of `harness serve` alone ends its registry, its evaluator and the evaluator's Ray (running this round)
    wait_until(lambda: any("raylet" in c for c in alive(descendants(service.process.pid))), "the evaluator's Ray", service=service)
    below = crash(service)
    assert len(below) >= 3  # the registry, the evaluator, Ray's processes: all gone now (crash asserts it)
    assert ledger.get(sid).state == "running"
    assert docker_client.containers.list(all=True, filters={"label": f"harness.round={round_id}"})  # left for the restart to sweep
    service.start()  # the same ports
    assert service.call("GET", "/api/v1/health").json()["status"] == "ok"
    view = wait_until(
        lambda: (v := service.call("GET", f"c/submissions/{sid}", team["token"]).json())["state"] == "evaluated" and v,
        "the verdict",
        timeout=300,
        service=service,
    )
    assert view["verdict"] == "SCORED", view
    assert len(ledger.get(sid).evaluations) == 1
    assert service.call("GET", "c/quota", team["token"]).json()["used"] == 1
    assert docker_client.containers.list(all=True, filters={"label": f"harness.round={round_id}"}) == []
    paths = Competition.load(load_settings("digits"), service.home).paths
    journal = json.loads((paths.root / "rounds" / f"{round_id}.json").read_text())
    assert journal["state"] == "finished" and journal["resumes"] == 1  # started once, resumed once
    assert f"the driver of {round_id} died" in service.log.read_text()
    _every_row_resolves(service)
