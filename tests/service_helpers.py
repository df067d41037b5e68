"""The real service for tests: ``harness serve`` in a subprocess (its own session, so a SIGKILL of
the group is a machine's crash: service, registry and evaluator at once) on free loopback ports,
in a work directory of the test's; teams added through the real ``harness teams`` command; a tiny
image (FROM scratch) pushed to the service's registry through the docker SDK with a team's token."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness.competition.paths import ServicePaths
from harness.service.control import PARTS, set_paused
from harness.util.pause import PAUSE_DIR_ENV

START_TIMEOUT_S = 120.0  # the first start prepares the competition's data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def harness(
    home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``harness ARGS`` with ``HARNESS_HOME=home`` (and ``env`` on top of this process's environment)."""
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        env={**os.environ, "HARNESS_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@dataclass
class Service:
    home: Path
    competition: str = "digits"
    overrides: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    registry_port: int = field(default_factory=free_port)
    environment: dict[str, str] = field(default_factory=dict)  # on top of this process's, at every start
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def log(self) -> Path:
        return self.home / f"serve-{self.port}.log"

    def start(self) -> Service:
        command = [sys.executable, "-m", "harness.cli", "serve", self.competition, "--port", str(self.port)]
        command += ["--registry-port", str(self.registry_port), *self.overrides]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **self.environment, "HARNESS_HOME": str(self.home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"harness serve exited {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"harness serve did not answer in {START_TIMEOUT_S:g} s: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM, as an organizer's Ctrl-C; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to the service's process group, as a power cut would: the registry ends by its
        parent-death signal, the evaluator (a session of its own) by its watchdog."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        config = str(self.home / "service" / self.competition / "registry.yml")
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and config in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass

    def add_team(self, name: str) -> dict:
        """``harness teams add`` (in this process: the command, without a new interpreter's start-up):
        the team as ``--json`` prints it, its token included."""
        from test_round import in_process

        done = in_process(self.home, "teams", "add", self.competition, name, "--json")
        assert done.returncode == 0, f"harness teams add {name!r} exited {done.returncode}: {done.stderr}"
        return json.loads(done.stdout)

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        """``method`` on ``path`` (``/api/v1/...``, or ``c/...`` for the competition's own), with a team's token."""
        if path.startswith("c/"):
            path = f"/api/v1/competitions/{self.competition}/{path[2:]}"
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=120, **kwargs)


@contextmanager
def running_service(home: Path, *overrides: str, environment: dict[str, str] | None = None) -> Iterator[Service]:
    """The real service (evaluation loop running) for the length of a ``with``; stopped as by Ctrl-C after it."""
    service = Service(home, overrides=overrides, environment=environment or {}).start()
    try:
        yield service
    finally:
        try:
            service.stop()
        finally:
            service.kill()  # what a stop left behind, if anything


# The shared service (tests/conftest.py's ``shared_service``): one per xdist worker, lent to each
# module whose tests need no configuration of their own, each test with its own teams.
SHARED_WINDOW_S = 2  # the sign-in failure window: short, so the rate-limit tests can wait it out
SHARED_QUOTA = 3  # submissions a day per team
SHARED_TRAIN_LOG_BYTES = 16 * 1024
PAUSES = "pause-points"  # under the service's home: the pause points a test arms (harness/util/pause.py)
SHARED_OVERRIDES = (
    f"service.sign_in.window_s={SHARED_WINDOW_S}",
    f"competition.quota.per_day={SHARED_QUOTA}",
    f"limits.train.log_bytes={SHARED_TRAIN_LOG_BYTES}",
    "competition.smoke.enabled=false",  # the full phases are what these modules follow (tests/test_smoke.py has the stage)
)


@contextmanager
def serving_shared(home: Path) -> Iterator[Service]:
    """The shared service on ``home``; it and its restarts may be held at a pause point (none is armed but by a test)."""
    (home / PAUSES).mkdir()
    with running_service(home, *SHARED_OVERRIDES, environment={PAUSE_DIR_ENV: str(home / PAUSES)}) as service:
        yield service


@contextmanager
def lent(service: Service) -> Iterator[Service]:
    """The shared service for one module: running (a module before may have killed it), the sign-in
    failures of the module before out of the window; its intake and evaluation running again after."""
    if service.process is None or service.process.poll() is not None:
        service.start()
    time.sleep(SHARED_WINDOW_S)
    try:
        yield service
    finally:
        set_paused(ServicePaths.of(service.competition, service.home), list(PARTS), False)


def tiny_image(docker_client, tag: str, note: bytes = b"tiny\n", extra: str = "") -> str:
    """A FROM-scratch image whose entrypoint does not exist: accepted by intake, fails at train.
    ``note`` is its one file (random bytes make an image of that size that no registry holds yet);
    ``extra`` more Dockerfile lines (``ENV ...``)."""
    context = io.BytesIO()
    dockerfile = f'FROM scratch\nCOPY note /note\nENTRYPOINT ["/no-such-program"]\n{extra}'.encode()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("note", note)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = docker_client.images.build(fileobj=context, custom_context=True, tag=tag, network_mode="none", rm=True)
    return image.id


def push(docker_client, reference: str, team: dict) -> str:
    """Push ``reference`` with the team's token; the manifest digest the registry reports."""
    repository, tag = reference.rsplit(":", 1)
    digest = None
    for line in docker_client.images.push(
        repository, tag=tag, auth_config={"username": team["id"], "password": team["token"]}, stream=True, decode=True
    ):
        if "error" in line:
            raise AssertionError(f"push of {reference} failed: {line['error']}")
        digest = (line.get("aux") or {}).get("Digest") or digest
    assert digest, f"the push of {reference} reported no digest"
    return digest
